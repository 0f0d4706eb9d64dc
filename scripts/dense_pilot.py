"""Train the default run with fully connected networks in place of its convolutional pair: does a step whose
products run nearer the matrix multiply's rate learn as much? (docs/experiments.md, "The step against the
machine's matrix multiply")

    python scripts/dense_pilot.py --width 1024 --out runs/dense-b128 train.batch_size=128 train.steps=11000 \
        train.eval_every=11000 train.checkpoint_every=11000

Every other setting is the default's (the CPU preset) unless overridden; the networks are those of
`benchmarks/bench_train.py --dense`, given to the loop through `latentquant.fit(cfg, encoder=, decoder=)`,
for 3-channel images (the default's look-alike): other data is refused by the networks' shape check.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from bench_train import DenseDecoder, DenseEncoder  # noqa: E402

import latentquant as lq  # noqa: E402
from latentquant.errors import UserError  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--out", required=True, help="the run directory")
    parser.add_argument("overrides", nargs="*", metavar="key=value")
    args = parser.parse_args()
    try:  # bad input is the user's: one line and exit 2, as the command line does
        cfg = lq.load_config([f"run_dir={args.out}", *args.overrides])
        k, side = cfg.model.num_latents, cfg.data.image_size
        metrics = lq.fit(cfg, encoder=lambda: DenseEncoder(3 * side * side, args.width, k),
                         decoder=lambda: DenseDecoder(k, args.width, 3, side))
    except UserError as err:
        print(f"dense_pilot.py: {err}", file=sys.stderr)
        sys.exit(2)
    print("  ".join(f"{key} {metrics[key]:.3f}" for key in ("infom", "infoe", "infoc", "psnr")))


if __name__ == "__main__":
    main()
