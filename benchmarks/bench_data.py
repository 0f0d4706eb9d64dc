"""Data pipeline throughput against what the paper model consumes, measured in one run.

The trainer's batches come from a uint8 store (in memory, or a memory-mapped .npy) by vectorised
indexing with the shuffled, sorted indices of `BatchStream`, then `to_input` converts them to float
(B, C, H, W) in [0, 1]. This times that path at batch 128 on 64x64x3 images and divides it by the images/s
of one QLAE training step of the paper architecture on the same machine (eager, and compiled unless
--no-compile), so the ratio says how far the loader is from being what training waits on.

    python benchmarks/bench_data.py [--n 200000] [--batches 200] [--no-compile]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from latentquant.evaluate import to_input
from latentquant.models import ModelParts
from latentquant.train import BatchStream

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_train import images_per_second, make_step  # noqa: E402  (the same step the training benchmark times)


def loader_images_per_second(store: np.ndarray, batch: int, batches: int) -> float:
    stream = BatchStream(len(store), batch, seed=0)
    to_input(store[stream.next()])  # touch the code path once
    start = time.perf_counter()
    for _ in range(batches):
        x = to_input(store[stream.next()])
    assert x.shape == (batch, 3, 64, 64)
    return batches * batch / (time.perf_counter() - start)


def model_images_per_second(batch: int, steps: int, compile_: bool) -> float:
    step = make_step(ModelParts(image_size=64), batch, channels_last=False, compile_=compile_, fused=compile_)
    return images_per_second(step, batch, steps, warmup=2 if compile_ else 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200_000, help="images in the store (64x64x3 uint8)")
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--no-compile", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    rng = np.random.default_rng(0)
    store = rng.integers(0, 256, size=(args.n, 64, 64, 3), dtype=np.uint8)
    rows = [("in-memory uint8 store", loader_images_per_second(store, args.batch, args.batches))]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "images.npy"
        np.save(path, store)
        mapped = np.load(path, mmap_mode="r")
        rows.append(("memory-mapped .npy", loader_images_per_second(mapped, args.batch, args.batches)))
        del mapped
    del store
    consumers = [("paper QLAE step, eager", model_images_per_second(args.batch, 2, False))]
    if not args.no_compile:
        consumers.append(("paper QLAE step, compiled", model_images_per_second(args.batch, 3, True)))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; batch {args.batch}, 64x64x3, "
          f"store of {args.n:,} images")
    for name, ips in consumers:
        print(f"  consumer  {name:<28} {ips:>10.1f} images/s")
    fastest = max(ips for _, ips in consumers)
    for name, ips in rows:
        print(f"  loader    {name:<28} {ips:>10.1f} images/s  = {ips / fastest:,.0f}x the fastest consumer")


if __name__ == "__main__":
    main()
