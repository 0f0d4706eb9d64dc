"""Reproduce the QLAE-vs-AE table of docs/experiments.md: the embedded default preset, 3 seeds each.

    python docs/compare_default.py --out runs/compare [--seeds 1,2,3] [--parallel 2] [--dry-run]

Runs `latentquant train seed=S` and `latentquant train model=ae seed=S` (the same CPU preset), then
prints a Markdown table of the final evaluation: per-run values and mean ± std per model. With
`--parallel 2` two runs share the machine, each with one thread (`train.threads=1`); a run directory
that already finished is read, not trained again.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

KEYS = ("infom", "infoe", "infoc", "psnr")


def final_eval(run_dir: Path) -> dict | None:
    path = run_dir / "metrics.jsonl"
    if not path.exists():
        return None
    evals = [json.loads(ln) for ln in path.read_text().splitlines() if '"split": "eval"' in ln]
    cfg = (run_dir / "config.yaml").read_text()
    steps = next(int(ln.split(":")[1]) for ln in cfg.splitlines() if ln.strip().startswith("steps:"))
    done = [e for e in evals if e["step"] == steps]
    return done[-1] if done else None


def run(model: str, seed: int, out: Path, threads: int, extra: list[str]) -> tuple[str, int, dict, float]:
    run_dir = out / f"{model}-seed{seed}"
    result = final_eval(run_dir)
    seconds = 0.0
    if result is None:
        start = time.perf_counter()
        subprocess.run(["latentquant", "train", f"model={model}", f"seed={seed}", f"run_dir={run_dir}",
                        f"train.threads={threads}", "progress=false", *extra], check=True)
        seconds = time.perf_counter() - start
        result = final_eval(run_dir)
    return model, seed, result, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/compare"))
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--models", default="qlae,ae")
    parser.add_argument("--parallel", type=int, default=1)
    parser.add_argument("extra", nargs="*", help="more key=value overrides for every run")
    args = parser.parse_args()
    jobs = [(m, int(s)) for s in args.seeds.split(",") for m in args.models.split(",")]
    threads = 1 if args.parallel > 1 else 0
    with ThreadPoolExecutor(args.parallel) as pool:
        results = list(pool.map(lambda j: run(j[0], j[1], args.out, threads, args.extra), jobs))
    print("| model | seed | InfoM | InfoE | InfoC | PSNR (dB) | wall time (s) |")
    print("|---|---|---|---|---|---|---|")
    for model, seed, r, seconds in results:
        print(f"| {model} | {seed} | " + " | ".join(f"{r[k]:.3f}" for k in KEYS[:3])
              + f" | {r['psnr']:.2f} | {seconds:.0f} |")
    for model in args.models.split(","):
        rows = [r for m, _, r, _ in results if m == model]
        cells = []
        for k in KEYS:
            values = [r[k] for r in rows]
            sd = statistics.stdev(values) if len(values) > 1 else 0.0
            cells.append(f"{statistics.mean(values):.3f} ± {sd:.3f}")
        print(f"| **{model} mean ± sd** | {len(rows)} seeds | " + " | ".join(cells) + " | |")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
