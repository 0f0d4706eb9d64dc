"""Subnormals flushed on every thread of torch's pool while training, and computed again after."""

import sys

import pytest
import torch

from latentquant.denormals import flushing_denormals, set_flush_denormal

SUBNORMAL = 1e-39  # below float32's smallest normal, 1.18e-38


@pytest.fixture
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    (torch.ones(1 << 22) * 2).sum()  # a parallel region: the pool's workers exist before the flag is set
    yield
    torch.set_num_threads(before)


N = 1 << 22
# Made while subnormals are computed: a scalar converted under the flag would already be 0 on the calling thread.
SUBNORMALS = torch.full((N,), SUBNORMAL)


def surviving() -> int:
    """How many of the N subnormals a parallel multiply keeps (0 when every thread flushes them)."""
    return int(torch.count_nonzero(SUBNORMALS * 1.0))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the pool is reached through /proc/self/maps")
def test_every_thread_of_the_pool_flushes(two_threads):
    try:
        assert set_flush_denormal(True) == 2
        assert surviving() == 0
    finally:
        set_flush_denormal(False)
    assert surviving() == N


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the pool is reached through /proc/self/maps")
def test_another_packages_openmp_runtime_is_not_mistaken_for_torchs(two_threads):
    pytest.importorskip("sklearn.ensemble")  # loads scikit-learn's own copy of libgomp, with its own pool
    try:
        assert set_flush_denormal(True) == 2
        assert surviving() == 0
    finally:
        set_flush_denormal(False)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the pool is reached through /proc/self/maps")
def test_torchs_own_switch_leaves_the_workers_computing_them(two_threads):
    # Why denormals.py reaches into the pool: torch.set_flush_denormal sets the calling thread's flag only.
    torch.set_flush_denormal(True)
    try:
        assert 0 < surviving() < N
    finally:
        torch.set_flush_denormal(False)


def test_the_block_restores_the_default_even_on_error():
    one = SUBNORMALS[:1].clone()
    with pytest.raises(RuntimeError), flushing_denormals():
        assert (one * 1.0).item() == 0.0
        raise RuntimeError
    assert (one * 1.0).item() > 0.0
