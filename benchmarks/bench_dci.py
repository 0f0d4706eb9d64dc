"""DCI: latentquant's learners versus the old formulation, timed in the same run on the same data.

The baseline is the old ``dci`` default, written out here: one scikit-learn ``GradientBoostingClassifier()``
per source, fitted one after the other on the same seeded split. Printed, each as a ratio to a baseline
measured in this run:

- ``dci()`` (gbt, the per-source fits on threads): speed-up and whether D, C, I and the importances are
  identical to the baseline's;
- ``dci(predictor="hist")``: speed-up over the baseline and its D / C / I differences from gbt;
- ``dci(predictor="forest")`` at a larger N: the default (training split capped at ``max_train`` = 10,000)
  against ``max_train=None`` (Tripod's 90 % of N), with the differences in D / C / I.

The data are bench_infomec.py's: 6 sources of sizes (10, 10, 10, 8, 4, 15), 12 continuous latents (6 noisy,
partly mixed copies of the sources, 3 noise, 3 nearly dead).

    python benchmarks/bench_dci.py             # gbt / hist at N = 10,000 (6,667 / 3,333), forest at 100,000
    python benchmarks/bench_dci.py --quick     # N = 2,000 and a forest at 20,000
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np
from bench_infomec import make_data
from sklearn.ensemble import GradientBoostingClassifier

from latentquant.metrics import dci
from latentquant.metrics._inputs import encoded_sources, train_test_indices
from latentquant.metrics.dci import disentanglement_completeness


def old_dci(sources: np.ndarray, latents: np.ndarray, n_train: int, n_test: int) -> dict:
    """The old default: sequential GradientBoostingClassifier() fits, one per source, seed 0."""
    codes, _ = encoded_sources(sources, "DCI")
    train, test = train_test_indices(len(codes), n_train, n_test, 0)
    importance = np.zeros((latents.shape[1], codes.shape[1]))
    accuracy = []
    for k in range(codes.shape[1]):
        model = GradientBoostingClassifier(random_state=0).fit(latents[train], codes[train, k])
        importance[:, k] = model.feature_importances_
        accuracy.append(np.mean(model.predict(latents[test]) == codes[test, k]))
    d, c = disentanglement_completeness(importance)
    return {"d": d, "c": c, "i": float(np.mean(accuracy)), "importance": importance}


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def differences(a: dict, b: dict) -> str:
    return " ".join(f"{key.upper()} {a[key] - b[key]:+.4f}" for key in ("d", "c", "i"))


def boosting(n: int) -> None:
    sources, latents = make_data(n, discrete=False)
    n_train, n_test = (10_000, 5_000) if n >= 15_000 else (n - n // 3, n // 3)
    print(f"N = {n}: {n_train} training / {n_test} test points, {os.cpu_count()} CPUs")
    t_old, old = timed(lambda: old_dci(sources, latents, n_train, n_test))
    t_new, new = timed(lambda: dci(sources, latents))
    identical = all(np.array_equal(old[key], new[key]) for key in ("d", "c", "i", "importance"))
    print(f"  gbt default (threads) vs old sequential gbt: speed-up {t_old / t_new:5.2f}x | identical: {identical}")
    t_hist, hist = timed(lambda: dci(sources, latents, predictor="hist"))
    print(f"  hist vs old sequential gbt:                  speed-up {t_old / t_hist:5.1f}x"
          f" | hist - gbt: {differences(hist, old)}")
    print(f"  (gbt D {old['d']:.4f} C {old['c']:.4f} I {old['i']:.4f})")


def forest(n: int) -> None:
    sources, latents = make_data(n, discrete=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the cap's own warning
        t_capped, capped = timed(lambda: dci(sources, latents, predictor="forest"))
    t_full, full = timed(lambda: dci(sources, latents, predictor="forest", max_train=None))
    print(f"N = {n}: forest capped ({capped['n_train']} training points) vs uncapped ({full['n_train']}):"
          f" speed-up {t_full / t_capped:5.1f}x | capped - uncapped: {differences(capped, full)}")
    print(f"  (uncapped D {full['d']:.4f} C {full['c']:.4f} I {full['i']:.4f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N = 2,000 and a forest at 20,000")
    parser.add_argument("--forest-n", type=int, default=None, help="N of the forest comparison")
    args = parser.parse_args()
    boosting(2_000 if args.quick else 10_000)
    forest(args.forest_n or (20_000 if args.quick else 100_000))


if __name__ == "__main__":
    main()
