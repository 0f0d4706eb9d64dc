"""Checks shared by every metric that takes ``sources`` (N, K) and ``latents`` (N, D) arrays."""

from __future__ import annotations

import numpy as np

from . import _mi


def as_matrix(values: np.ndarray, name: str, expected: str) -> np.ndarray:
    """``values`` as a finite, numeric, 2-D NumPy array (torch tensors are moved to the CPU first)."""
    if hasattr(values, "detach"):  # a torch tensor, without importing torch
        values = values.detach().cpu().numpy()
    array = np.asarray(values)
    if array.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array {expected}, got shape {array.shape}")
    if array.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be numeric (bool, integer or float), got dtype {array.dtype}")
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        bad = np.argwhere(~np.isfinite(array))[0]
        raise ValueError(f"{name} contains NaN or inf (first at row {bad[0]}, column {bad[1]})")
    return array


def paired_arrays(
    sources: np.ndarray, latents: np.ndarray, metric: str, *, min_latents: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Validated (sources, latents): 2-D, finite, numeric, the same N >= 2, at least ``min_latents`` columns."""
    source_array = as_matrix(sources, "sources", "(N, K)")
    latent_array = as_matrix(latents, "latents", "(N, D)")
    if source_array.shape[0] != latent_array.shape[0]:
        raise ValueError(
            f"sources and latents must have the same number of samples, got {source_array.shape[0]} "
            f"and {latent_array.shape[0]}"
        )
    if source_array.shape[0] < 2:
        raise ValueError(f"{metric} needs at least 2 samples, got {source_array.shape[0]}")
    if source_array.shape[1] < 1:
        raise ValueError("sources has no columns")
    if latent_array.shape[1] < 1:
        raise ValueError("latents has no columns")
    if latent_array.shape[1] < min_latents:
        raise ValueError(f"{metric} needs at least {min_latents} latent(s), got {latent_array.shape[1]}")
    return source_array, rescaled_latents(latent_array)


def float_sources(sources: np.ndarray) -> np.ndarray:
    """Sources as float64 for metrics that treat them as real values. Integer columns are shifted to start at 0
    in integer arithmetic first: uint64 labels near 2**64 would otherwise merge when cast (R² and explicitness
    are unchanged by the shift)."""
    if sources.dtype.kind in "iu":
        return (sources - sources.min(axis=0)).astype(np.float64)
    return sources.astype(np.float64)


def rescaled_latents(latents: np.ndarray) -> np.ndarray:
    """Latent columns whose magnitude would overflow a range or a distance (above 2**1000) divided by a power of
    two, which is exact: every metric here is invariant to a column's scale, and values elsewhere stay bit for
    bit what they were."""
    if latents.dtype.kind != "f" or latents.dtype.itemsize < 8 or latents.size == 0:
        return latents  # narrower floats are computed on in float64, where they cannot overflow
    peak = np.abs(latents).max(axis=0)
    big = peak > 2.0**1000
    if not big.any():
        return latents
    out = latents.astype(np.float64, copy=True)
    out[:, big] = np.ldexp(out[:, big], -(np.frexp(peak[big])[1] + 2))  # into [-0.25, 0.25]
    return out


def encoded_sources(sources: np.ndarray, metric: str) -> tuple[np.ndarray, list[int]]:
    """Label-encode each source column; a constant source has no entropy or classes to predict."""
    columns, n_classes = zip(*(_mi.label_encode(column) for column in sources.T), strict=True)
    constant = [k for k, c in enumerate(n_classes) if c < 2]
    if constant:
        raise ValueError(f"source(s) {constant} take a single value, so {metric} is undefined; drop those columns")
    return np.stack(columns, axis=1), list(n_classes)


def resolve_discrete(latents: np.ndarray, discrete_latents: bool | None) -> bool:
    """``None`` means: integer and boolean latents are discrete, floats continuous."""
    if discrete_latents is None:
        return latents.dtype.kind in "biu"
    return bool(discrete_latents)


def train_test_indices(
    n: int, n_train: int, n_test: int, random_state: int | None | np.random.RandomState
) -> tuple[np.ndarray, np.ndarray]:
    """Disjoint random index sets of the given sizes (n_train + n_test <= n)."""
    rng = random_state if isinstance(random_state, np.random.RandomState) else np.random.RandomState(random_state)
    order = rng.permutation(n)
    return order[:n_train], order[n_train : n_train + n_test]


def top_two_gap(values: np.ndarray, axis: int) -> np.ndarray:
    """Largest minus second-largest entry along ``axis`` (which needs at least 2 entries)."""
    top = -np.sort(-values, axis=axis)
    return np.take(top, 0, axis=axis) - np.take(top, 1, axis=axis)
