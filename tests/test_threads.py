"""The automatic thread count: every free core, none that another process keeps busy."""

import subprocess
import sys

import pytest

from latentquant import threads


@pytest.mark.parametrize(("busy", "cores", "expected"), [(0.0, 2, 2), (0.4, 2, 2), (0.6, 2, 1), (1.0, 2, 1),
                                                          (1.9, 2, 1), (5.0, 2, 1), (1.2, 8, 7), (2.6, 8, 5)])
def test_auto_leaves_out_the_cores_others_keep_busy(monkeypatch, busy, cores, expected):
    monkeypatch.setattr(threads, "busy_cores", lambda window=0.3: busy)
    monkeypatch.setattr(threads, "available_cores", lambda: cores)
    assert threads.choose_threads(0) == expected


def test_an_explicit_count_is_kept(monkeypatch):
    monkeypatch.setattr(threads, "busy_cores", lambda window=0.3: 99.0)
    assert threads.choose_threads(3) == 3


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/stat")
def test_a_busy_process_is_counted():
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        beside_one = threads.busy_cores(window=0.5)
    finally:
        hog.kill()
        hog.wait()
    assert beside_one >= 0.7  # other tests may run beside it too, so only a lower bound
