"""Per-source work of a metric spread over threads, with results that do not depend on how many.

NumPy's and SciPy's kernels release the GIL, so a metric whose sources are independent (an NMI row, a
logistic regression per source) runs them side by side on threads; each task is deterministic and runs
alone on its thread, so the values are the same whatever ``n_jobs`` is.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def resolve_jobs(n_jobs: int | None) -> int:
    """``None``: every core this process may run on, at most ``OMP_NUM_THREADS`` when that is set; otherwise
    ``n_jobs`` itself, which must be a positive integer."""
    if n_jobs is None:
        try:
            available = len(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            available = os.cpu_count() or 1
        # OMP_NUM_THREADS is how a parent (a scheduler, the test suite's parallel workers) sets a thread budget.
        budget = os.environ.get("OMP_NUM_THREADS", "")
        if budget.isdigit() and int(budget) > 0:
            available = min(available, int(budget))
        return max(1, available)
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs < 1:
        raise ValueError(f"n_jobs must be None (every available core) or a positive integer, got {n_jobs!r}")
    return n_jobs


def thread_map(
    fn: Callable[[T], R], items: Sequence[T], *, n_jobs: int, costs: Sequence[float] | None = None
) -> list[R]:
    """``[fn(item) for item in items]`` on up to ``n_jobs`` threads, in the items' order.

    ``costs`` (one per item) starts the most expensive first, so that the threads finish close together
    (longest-processing-time-first scheduling); an exception from any task is raised here.
    """
    if n_jobs <= 1 or len(items) <= 1:
        return [fn(item) for item in items]
    order = sorted(range(len(items)), key=lambda i: -costs[i]) if costs is not None else range(len(items))
    with ThreadPoolExecutor(max_workers=min(n_jobs, len(items)), thread_name_prefix="latentquant-metric") as pool:
        futures = {i: pool.submit(fn, items[i]) for i in order}
        return [futures[i].result() for i in range(len(items))]
