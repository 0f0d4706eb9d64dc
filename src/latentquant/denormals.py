"""Subnormal floats computed as zero on every CPU thread that runs PyTorch's kernels, while training.

AdamW's first moment of a parameter whose gradient stays zero decays by beta1 each step and, a few hundred
steps in, enters the subnormal range (below 1.2e-38), where x86 arithmetic runs many times slower: the fused
AdamW step on 4 M subnormal moments took 26 ms instead of 1.3 ms here, and the default run's steps slowed by a
sixth after its first 600 (benchmarks/bench_denormals.py). Such moments are far below anything that can move
a weight (the update is lr * m / (sqrt(v) + eps)), so flushing them changes no logged number.

`torch.set_flush_denormal` sets the flag of the calling thread only, and an OpenMP worker keeps the flags it
had when it was created. So the flag is also set from inside one OpenMP parallel region of the runtime PyTorch
uses, once on each of its threads: the same pool every later kernel of torch's uses.
"""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import torch

_REGION = ctypes.CFUNCTYPE(None, ctypes.c_void_p)


def _openmp_runtime() -> ctypes.CDLL | None:
    """torch's CPU library, through which its OpenMP runtime's entry points resolve, or None where it cannot be
    found. Other packages load their own copies of the runtime (scikit-learn does), each with its own pool, so
    the symbol is looked up from torch's library: dlsym on a handle searches that library's own dependencies."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "/libtorch_cpu.so" in line}
    except OSError:
        return None
    for path in sorted(paths):
        try:
            library = ctypes.CDLL(path)  # already loaded: the same instance, not a second copy
            library.GOMP_parallel.argtypes = [_REGION, ctypes.c_void_p, ctypes.c_uint, ctypes.c_uint]
            return library
        except (OSError, AttributeError):
            continue
    return None


def set_flush_denormal(on: bool) -> int:
    """Subnormals as zero (or not) on this thread and every thread of torch's OpenMP pool; returns on how
    many threads it was set (1 where the pool cannot be reached: this thread only)."""
    torch.set_flush_denormal(on)
    runtime = _openmp_runtime()
    if runtime is None:
        return 1
    done: list[bool] = []

    def each_thread(_: int | None) -> None:
        done.append(torch.set_flush_denormal(on))

    region = _REGION(each_thread)  # kept referenced until the region has returned
    runtime.GOMP_parallel(region, None, torch.get_num_threads(), 0)
    return len(done)


@contextmanager
def flushing_denormals() -> Iterator[None]:
    """Subnormals as zero inside the block; PyTorch's default (computed) restored after it."""
    set_flush_denormal(True)
    try:
        yield
    finally:
        set_flush_denormal(False)
