"""The CPU preset's training step on an idle machine and beside competing CPU-bound processes, in one run.

Each case runs in a fresh process (the OpenMP wait policy is read when torch loads), times the step for a few
seconds and prints images/s. The competitors are busy Python loops, one core each, started before the step's
process. Every case is compared with the idle run on every core in the same run; "fair share" is that idle
rate times the share of cores the competitors leave (1/2 beside one competitor on 2 cores), which the
automatic thread count (`train.threads=0`) should reach.

    python benchmarks/bench_busy.py [--seconds 4] [--competitors 1]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

WORKER = r"""
import json, sys, time, torch
sys.path.insert(0, {bench_dir!r})
from bench_train import cpu_preset, make_step
from latentquant.build import set_threads
from latentquant.config import TrainConfig
threads = set_threads({threads})
parts, batch = cpu_preset()
step = make_step(parts, batch, channels_last=TrainConfig.channels_last, compile_=False, fused=False)
for _ in range(3):
    step()
start, steps = time.perf_counter(), 0
while time.perf_counter() - start < {seconds}:
    step()
    steps += 1
print(json.dumps({{"threads": threads, "images_per_s": steps * batch / (time.perf_counter() - start)}}))
"""


def run_case(threads: int, competitors: int, seconds: float, wait_policy: str | None) -> dict:
    env = dict(os.environ)
    env.pop("OMP_NUM_THREADS", None)
    if wait_policy:
        env["OMP_WAIT_POLICY"] = wait_policy
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(competitors)]
    try:
        time.sleep(0.5 if hogs else 0.0)  # running before the step's process looks at the machine
        code = WORKER.format(bench_dir=os.path.dirname(os.path.abspath(__file__)), threads=threads, seconds=seconds)
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="timed seconds per case")
    parser.add_argument("--competitors", type=int, default=1, help="busy processes beside the step")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    fair = max(cores - args.competitors, 1) / cores
    cases = [("idle", cores, 0, None), ("idle", 1, 0, None), ("idle", cores, 0, "PASSIVE"), ("idle", 0, 0, None),
             ("busy", cores, args.competitors, None), ("busy", 1, args.competitors, None),
             ("busy", cores, args.competitors, "PASSIVE"), ("busy", 0, args.competitors, None)]
    print(f"{cores} cores; busy = beside {args.competitors} CPU-bound process(es); fair share {fair:.2f} of idle")
    print(f"{'machine':<8} {'threads':<10} {'wait policy':<12} {'images/s':>9} {'vs idle':>8} {'vs fair share':>14}")
    base = None
    for machine, threads, competitors, policy in cases:
        result = run_case(threads, competitors, args.seconds, policy)
        base = base or result["images_per_s"]
        ratio = result["images_per_s"] / base
        label = f"auto ({result['threads']})" if threads == 0 else str(threads)
        share = f"{ratio / fair:.2f}x" if machine == "busy" else "-"
        print(f"{machine:<8} {label:<10} {policy or 'default':<12} {result['images_per_s']:>9.0f} {ratio:>7.2f}x "
              f"{share:>14}")


if __name__ == "__main__":
    main()
