"""Where the evaluation protocols disagree: the same representation scored under each codebase's conventions.

Every case is a representation whose ideal score is known; the table shows what each convention makes of it.

    python scripts/protocol_differences.py
"""

from __future__ import annotations

import warnings

import numpy as np

from latentquant.data import GroundTruthData
from latentquant.evaluate import DatasetSampler
from latentquant.metrics import factorvae_score, mig, sap


def factorial(sizes: tuple[int, ...]) -> np.ndarray:
    return np.stack(np.meshgrid(*[np.arange(s) for s in sizes], indexing="ij"), axis=-1).reshape(-1, len(sizes))


def main() -> None:
    warnings.simplefilter("ignore")
    # dSprites' factor grid (shape 3, scale 6, orientation 40, x 32, y 32), subsampled: the identity code has
    # 40 and 32 levels in three latents, more than MIG's 20 bins.
    grid = factorial((3, 6, 40, 32, 32))[np.random.default_rng(0).choice(737_280, 20_000, replace=False)]
    rows = []
    rows.append(("SAP, identity code (dSprites grid, 20,000 rows)", "continuous R² (qlae, tripod, factorqvae)",
                 sap(grid, grid), "discrete LinearSVC (dlib)", sap(grid, grid, factor_type="discrete")))
    rows.append(("MIG, identity code (dSprites grid)", "label-encoded codes (qlae, tripod, factorqvae)",
                 mig(grid, grid), "20 bins (dlib)", mig(grid, grid, discrete_latents=False)))
    toy = factorial((4, 4, 4))
    data = GroundTruthData("toy", toy.astype(np.uint8)[:, None, None, :], toy, ["a", "b", "c"], [4, 4, 4],
                           [np.arange(4)] * 3)
    scale = np.array([1.0, 1.0, 0.03])  # a correct code whose third latent has a small scale

    def encode(images: np.ndarray) -> np.ndarray:
        return images.reshape(len(images), -1).astype(float) / 3 * scale

    sampler = DatasetSampler(data, encode)
    pruned = factorvae_score(sampler, n_train=2000, n_eval=1000)["score"]
    kept = factorvae_score(sampler, n_train=2000, n_eval=1000, prune_threshold=0.0)["score"]
    rows.append(("FactorVAE score, correct code with one latent scaled by 0.03", "prune std < 0.05 (dlib, every "
                 "protocol)", pruned, "no pruning (disent)", kept))
    print("| case | convention A | score | convention B | score |")
    print("|---|---|---|---|---|")
    for case, a, sa, b, sb in rows:
        print(f"| {case} | {a} | {sa:.3f} | {b} | {sb:.3f} |")


if __name__ == "__main__":
    main()
