"""The default run's training step early and late in a run, with subnormal floats computed and flushed to zero.

AdamW's first moment of a parameter whose gradient stays zero decays by beta1 each step and, after a few hundred
steps, enters the subnormal range, where CPU arithmetic is many times slower. `latentquant train` flushes
subnormals to zero while it trains; this runs the real training loop (the default preset, shortened) twice in
one process, once with that turned off, and prints each run's images/s early (its steps 100-500) and late (its
last 1,000 steps), the late rate against the early one (the baseline measured in the same run), the share of
the checkpointed floats that are subnormal, and whether the two runs logged the same numbers.

    python benchmarks/bench_denormals.py [--steps 3000] [--set preset=cpu-gan --set model=qlinfowgan_gp]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file

from latentquant import config
from latentquant import train as train_mod
from latentquant.errors import UserError


def run(steps: int, root: Path, flush: bool, overrides: list[str]) -> dict:
    """One shortened run; its train records' rates, the checkpoint's subnormal share, its logged numbers."""
    run_dir = root / ("flushed" if flush else "subnormal")
    cfg = config.resolve([*overrides, f"train.steps={steps}", f"train.eval_every={steps}",
                          f"train.checkpoint_every={steps}", "eval.figures=false", "progress=false",
                          f"run_dir={run_dir}"])
    original = train_mod.flushing_denormals
    if not flush:
        train_mod.flushing_denormals = contextlib.nullcontext
    try:
        train_mod.train(cfg)
    finally:
        train_mod.flushing_denormals = original
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if r["split"] == "train"]

    def rate(first: int, last: int) -> float:
        window = [r["images_per_s"] for r in train if first < r["step"] <= last]
        return sum(window) / len(window)

    tensors = [t for t in load_file(run_dir / "checkpoints" / f"step_{steps}.safetensors").values()
               if t.dtype == torch.float32]
    tiny = torch.finfo(torch.float32).tiny
    subnormal = sum(int(((t != 0) & (t.abs() < tiny)).sum()) for t in tensors) / sum(t.numel() for t in tensors)
    logged = [{k: v for k, v in r.items() if k != "images_per_s"} for r in records if r["split"] in ("train", "eval")]
    return {"early": rate(100, 500), "late": rate(steps - 1000, steps), "subnormal": subnormal, "logged": logged}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3000, help="at least 1,500 (the late window is the last 1,000)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="a config override (repeatable), e.g. preset=cpu-long or model=ae")
    args = parser.parse_args()
    if args.steps < 1500:
        parser.error(f"--steps must be at least 1500, got {args.steps}")
    try:  # a bad override is the user's: one line and exit 2, before anything runs
        config.resolve(args.overrides)
    except UserError as err:
        parser.error(str(err))
    with tempfile.TemporaryDirectory() as tmp:
        results = {flush: run(args.steps, Path(tmp), flush, args.overrides) for flush in (False, True)}
    what = " ".join(args.overrides) or "the default preset"
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {what}, {args.steps} steps")
    print(f"{'subnormals':<12} {'images/s, steps 100-500':>24} {'last 1,000':>11} {'late/early':>11} "
          f"{'subnormal floats':>17}")
    for flush, r in results.items():
        print(f"{'flushed' if flush else 'computed':<12} {r['early']:>24.0f} {r['late']:>11.0f} "
              f"{r['late'] / r['early']:>10.2f}x {r['subnormal']:>16.1%}")
    print(f"late rate, flushed against computed: {results[True]['late'] / results[False]['late']:.2f}x; "
          f"logged numbers identical: {results[True]['logged'] == results[False]['logged']}")


if __name__ == "__main__":
    main()
