"""MIG: the mutual information gap (Chen et al. 2018), as disentanglement_lib computes it."""

from __future__ import annotations

import numpy as np

from . import _inputs, _mi


def mig(
    sources: np.ndarray,
    latents: np.ndarray,
    *,
    n_bins: int = 20,
    discrete_latents: bool | None = None,
) -> float:
    """Mean over sources k of (I(s_k; z_a) - I(s_k; z_b)) / H(s_k), z_a and z_b the two most informative latents.

    Sources (N, K) are label-encoded by their sorted unique values. Continuous latents (N, D) are discretised
    into ``n_bins`` equal-width bins spanning each latent's own range (disentanglement_lib's histogram
    discretiser: ``np.digitize`` against ``np.histogram`` edges without the last one); discrete latents
    (``discrete_latents=True``, or ``None`` with an integer or boolean dtype) are label-encoded as they are.
    I and H are plug-in (empirical) estimates in nats. Needs D >= 2; raises ``ValueError`` for a constant
    source (entropy 0), non-finite values, mismatched or too few samples, or wrong dimensions.
    """
    source_array, latent_array = _inputs.paired_arrays(sources, latents, "MIG", min_latents=2)
    if n_bins < 2:
        raise ValueError(f"n_bins must be at least 2, got {n_bins}")
    codes, n_classes = _inputs.encoded_sources(source_array, "MIG (normalised by source entropy)")
    latent_codes, n_codes = discretised_latents(latent_array, n_bins, discrete_latents)

    gaps = []
    for k, c in enumerate(n_classes):
        mi = _mi.plugin_mutual_info(codes[:, k], c, latent_codes, n_codes)
        gaps.append(_inputs.top_two_gap(mi, axis=0) / _mi.plugin_entropy(codes[:, k], c))
    return float(np.mean(gaps))


def discretised_latents(
    latents: np.ndarray, n_bins: int, discrete_latents: bool | None
) -> tuple[np.ndarray, list[int]]:
    """(codes (N, D), number of codes per latent): label-encoded discrete latents, or continuous ones in
    ``n_bins`` histogram bins (:func:`histogram_codes`); ``discrete_latents=None`` follows the dtype."""
    if n_bins < 2:
        raise ValueError(f"n_bins must be at least 2, got {n_bins}")
    if _inputs.resolve_discrete(latents, discrete_latents):
        columns, n_codes = zip(*(_mi.label_encode(column) for column in latents.T), strict=True)
    else:
        columns, n_codes = zip(*(histogram_codes(column, n_bins) for column in latents.T), strict=True)
    return np.stack(columns, axis=1), list(n_codes)


def mutual_info_matrix(
    codes: np.ndarray, n_classes: list[int], latent_codes: np.ndarray, n_codes: list[int]
) -> np.ndarray:
    """(K, D) plug-in mutual information (nats) between each label-encoded source and each latent code."""
    return np.stack([_mi.plugin_mutual_info(codes[:, k], c, latent_codes, n_codes) for k, c in enumerate(n_classes)])


def source_latent_mutual_info(
    sources: np.ndarray, latents: np.ndarray, metric: str, n_bins: int, discrete_latents: bool | None
) -> tuple[np.ndarray, np.ndarray]:
    """(K, D) plug-in I(s_k; z_j) and (K,) H(s_k) in nats, latents discretised as MIG does, for the metrics that
    take gaps over sources (MIG-sup, DCIMIG): they need K >= 2 (``ValueError`` naming ``metric`` otherwise)."""
    source_array, latent_array = _inputs.paired_arrays(sources, latents, metric)
    if source_array.shape[1] < 2:
        raise ValueError(f"{metric} needs at least 2 sources (a gap between two), got {source_array.shape[1]}")
    codes, n_classes = _inputs.encoded_sources(source_array, f"{metric} (normalised by source entropy)")
    latent_codes, n_codes = discretised_latents(latent_array, n_bins, discrete_latents)
    entropy = np.array([_mi.plugin_entropy(codes[:, k], c) for k, c in enumerate(n_classes)])
    return mutual_info_matrix(codes, n_classes, latent_codes, n_codes), entropy


def histogram_codes(values: np.ndarray, n_bins: int) -> tuple[np.ndarray, int]:
    """Bin index 0..n_bins-1 of each value in ``n_bins`` equal-width bins over the column's range.

    The top edge is dropped, as in disentanglement_lib, so the maximum falls into the last bin instead of
    a bin of its own. A constant column lands in a single bin.
    """
    edges = np.histogram_bin_edges(np.asarray(values, dtype=np.float64), bins=n_bins)
    return np.digitize(values, edges[:-1]) - 1, n_bins
