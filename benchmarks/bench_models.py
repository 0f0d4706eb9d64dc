"""Per-step cost of every model, and of the composable terms on QLAE, relative to QLAE, in one run.

Each model's own `train_step` (all its optimizers) on one fixed random batch at the CPU preset's size
(16x16, batch 64, the preset's networks), after warm-up. Eager models are timed in interleaved rounds and
each keeps its fastest round, so a burst of other work on the machine does not land on one model only.
With --compile (as the preset trains) each model is compiled from scratch and timed in turn: a compiled
step's graph does not survive the next model's compilation.

    python benchmarks/bench_models.py [--rounds 3] [--steps 5] [--models qlae,ae,tripod] [--compile]
"""

from __future__ import annotations

import argparse
import os
import time

import torch
from bench_train import cpu_preset, make_step

from latentquant.models import get_spec, list_models

# The composable terms on QLAE, weighted as in Tripod (KLM, NHP) and FactorVAE's lowest sweep value (TC).
COMBINATIONS = {"qlae + klm": {"klm": 1e-4}, "qlae + nhp": {"nhp": 1e-2},
                "qlae + klm + nhp": {"klm": 1e-4, "nhp": 1e-2}, "qlae + tc": {"tc": 10.0}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per round")
    parser.add_argument("--models", default=None, help="comma-separated (default: every autoencoder + combinations)")
    parser.add_argument("--compile", action="store_true", help="time compiled steps, as the CPU preset trains")
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    parts, batch = cpu_preset(dataset_size=480_000)  # beta_tcvae's estimator needs N (the look-alike's)
    names = args.models.split(",") if args.models else \
        [m for m in list_models() if get_spec(m).family == "autoencoder"] + list(COMBINATIONS)
    if "qlae" not in names:
        names.insert(0, "qlae")

    def build(label: str):
        base, _, _ = label.partition(" + ")
        step = make_step(parts, batch, channels_last=True, compile_=args.compile, fused=None, model_name=base,
                         terms=COMBINATIONS.get(label, {}))
        for _ in range(3 if args.compile else 1):  # warm-up (compilation, and its recompile for a new step)
            step()
        return step

    best = dict.fromkeys(names, float("inf"))
    if args.compile:
        for label in names:
            step = build(label)
            for _ in range(args.rounds):
                best[label] = min(best[label], _seconds_per_step(step, args.steps))
    else:
        steps = {label: build(label) for label in names}
        for _ in range(args.rounds):
            for label, step in steps.items():
                best[label] = min(best[label], _seconds_per_step(step, args.steps))
    mode = "compiled" if args.compile else "eager"
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; CPU preset, batch {batch}, {mode}")
    print(f"{'model':<20} {'ms/step':>8} {'vs qlae':>8}")
    for label in names:
        print(f"{label:<20} {best[label] * 1e3:>8.1f} {best[label] / best['qlae']:>7.2f}x")


def _seconds_per_step(step, count: int) -> float:
    start = time.perf_counter()
    for _ in range(count):
        step()
    return (time.perf_counter() - start) / count


if __name__ == "__main__":
    main()
