"""Codebook usage of quantized latents: how often each value is used, and the entropy of that use."""

from __future__ import annotations

import numpy as np


def codebook_usage(indices: np.ndarray, num_values: list[int]) -> np.ndarray:
    """How often each codebook index is used, per latent.

    `indices` is (N, D) integer codes, `num_values` the codebook size K_j of each latent. Returns (D, max K)
    int64 counts; row j sums to N and its columns from K_j on are zero (ragged codebooks).
    """
    indices = np.asarray(indices)
    if indices.ndim != 2 or indices.shape[1] != len(num_values):
        raise ValueError(f"expected (N, {len(num_values)}) indices, got shape {indices.shape}")
    counts = np.zeros((len(num_values), max(num_values, default=0)), dtype=np.int64)
    for j, k in enumerate(num_values):
        column = indices[:, j].astype(np.int64)
        if column.size and (column.min() < 0 or column.max() >= k):
            raise ValueError(f"latent {j}: indices must lie in 0..{k - 1}, got {column.min()}..{column.max()}")
        counts[j, :k] = np.bincount(column, minlength=k)
    return counts


def usage_entropy_bits(counts: np.ndarray) -> np.ndarray:
    """Entropy in bits of each row's usage distribution: 0 for one value, log2 K for all K equally used.

    2**entropy is the perplexity, the number of equally used values the usage is worth.
    """
    counts = np.asarray(counts, dtype=float)
    p = counts / np.maximum(counts.sum(axis=-1, keepdims=True), 1.0)
    safe = np.where(p > 0, p, 1.0)  # log2(1) = 0: unused values add nothing
    return -(p * np.log2(safe)).sum(axis=-1)
