"""Codebook usage counts and their entropy (metrics/usage.py), against cases whose answer is known by hand."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from latentquant.metrics import codebook_usage, usage_entropy_bits


def test_codebook_usage_counts_a_hand_made_case():
    indices = np.array([[0, 2, 0], [1, 2, 0], [1, 0, 0], [1, 2, 0]])
    counts = codebook_usage(indices, [2, 3, 1])
    assert counts.tolist() == [[1, 3, 0], [1, 0, 3], [4, 0, 0]]  # padded beyond each codebook's size
    entropy = usage_entropy_bits(counts)
    assert entropy[2] == 0.0  # one value used
    assert np.isclose(entropy[0], -(0.25 * np.log2(0.25) + 0.75 * np.log2(0.75)))
    assert np.isclose(usage_entropy_bits(np.array([5, 5, 5, 5])), 2.0)  # four equally used: 2 bits
    with pytest.raises(ValueError, match="0..1"):
        codebook_usage(np.array([[2]]), [2])
    with pytest.raises(ValueError, match="shape"):
        codebook_usage(np.zeros((3, 2), dtype=int), [2])


@pytest.mark.parametrize("k", [2, 3, 7, 16])
def test_uniform_use_of_k_values_is_log2_k_bits(k):
    indices = np.tile(np.arange(k), 5)[:, None]  # each value exactly 5 times
    counts = codebook_usage(indices, [k])
    assert counts.tolist() == [[5] * k]
    assert usage_entropy_bits(counts)[0] == pytest.approx(np.log2(k), abs=1e-12)


def test_a_single_used_value_is_zero_bits_whatever_the_codebook_size():
    counts = codebook_usage(np.full((9, 2), 3), [4, 10])
    assert counts.sum(axis=1).tolist() == [9, 9] and counts[:, 3].tolist() == [9, 9]
    assert usage_entropy_bits(counts).tolist() == [0.0, 0.0]


def test_ragged_codebooks_pad_with_zeros_that_add_no_entropy():
    # Latent 0 uses both of its 2 values equally, latent 1 all 8 of its values: 1 and 3 bits.
    indices = np.stack([np.arange(16) % 2, np.arange(16) % 8], axis=1)
    counts = codebook_usage(indices, [2, 8])
    assert counts.shape == (2, 8) and counts[0, 2:].tolist() == [0] * 6
    np.testing.assert_allclose(usage_entropy_bits(counts), [1.0, 3.0], atol=1e-12)


@pytest.mark.parametrize("bad", [-1, 3])
def test_out_of_range_index_raises(bad):
    indices = np.array([[0, 1], [bad, 0]])
    with pytest.raises(ValueError, match=r"latent 0: indices must lie in 0\.\.2"):
        codebook_usage(indices, [3, 2])


def test_no_samples_give_zero_counts_and_zero_bits():
    counts = codebook_usage(np.zeros((0, 2), dtype=int), [3, 2])
    assert counts.tolist() == [[0, 0, 0], [0, 0, 0]]
    assert usage_entropy_bits(counts).tolist() == [0.0, 0.0]


@given(st.lists(st.integers(0, 5), min_size=1, max_size=60))
def test_entropy_lies_between_zero_and_log2_of_the_codebook_size(codes):
    counts = codebook_usage(np.asarray(codes)[:, None], [6])
    assert counts.sum() == len(codes)
    bits = usage_entropy_bits(counts)[0]
    assert -1e-12 <= bits <= np.log2(6) + 1e-12
    assert bits <= np.log2(len(set(codes))) + 1e-12  # never more than the values actually used allow
