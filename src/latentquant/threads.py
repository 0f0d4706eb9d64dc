"""How many threads a run gets: every core this process may use, less those other processes keep busy.

PyTorch's CPU kernels split each operation statically over their threads and wait for the last one. When
another CPU-bound process shares a core with one of those threads, every operation waits for that thread's
next time slice: on the 2-core machine, the CPU preset's step fell from 480 to 157 images/s beside one
busy process with 2 threads, and ran at 340 with 1. So `train.threads=0` (auto) counts the cores that
others keep busy, just before training starts, and leaves them out (benchmarks/bench_busy.py).
"""

from __future__ import annotations

import math
import os
import time

# A core counts as taken when other processes kept it busy for at least half of the window.
_TAKEN = 0.5


def available_cores() -> int:
    """Cores this process may run on (its affinity mask where the platform has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _cpu_times() -> tuple[float, float] | None:
    """(busy, total) jiffies of the whole machine from /proc/stat, or None where there is no such file."""
    try:
        with open("/proc/stat") as f:
            fields = [float(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    if len(fields) < 4:
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)  # idle + iowait
    total = sum(fields[:8])  # guest time is already inside user time
    return total - idle, total


def busy_cores(window: float = 0.3) -> float:
    """Cores kept busy by other processes, averaged over ``window`` seconds while this process sleeps.

    Linux: the machine's non-idle share of CPU time in /proc/stat times the number of cores. Elsewhere the
    1-minute load average (a lagging estimate); 0 where neither exists.
    """
    before = _cpu_times()
    if before is None:
        try:
            return float(os.getloadavg()[0])
        except (AttributeError, OSError):
            return 0.0
    own = time.process_time()
    time.sleep(window)
    after = _cpu_times()
    if after is None or after[1] <= before[1]:
        return 0.0
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    own_ticks = (time.process_time() - own) * ticks
    busy = max(after[0] - before[0] - own_ticks, 0.0)
    return (os.cpu_count() or 1) * busy / (after[1] - before[1])


def choose_threads(requested: int) -> int:
    """``requested`` if positive; for 0, the available cores less those taken by other processes (at least 1)."""
    if requested > 0:
        return requested
    cores = available_cores()
    taken = math.floor(busy_cores() + 1 - _TAKEN)
    return max(1, cores - taken)
