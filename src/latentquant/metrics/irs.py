"""IRS: the interventional robustness score (Suter et al. 2019), as disentanglement_lib computes it."""

from __future__ import annotations

import numpy as np

from . import _inputs
from .mig import histogram_codes


def irs(
    sources: np.ndarray,
    latents: np.ndarray,
    *,
    diff_quantile: float = 0.99,
    n_bins: int = 20,
) -> dict:
    """How little each latent moves when the source it depends on most is held fixed.

    Sources are discretised into ``n_bins`` equal-width bins each (disentanglement_lib bins the factors too;
    factors with at most ``n_bins`` evenly spaced values keep their classes). For latent j and source k:

    - within each group of samples sharing a value of s_k, the ``diff_quantile`` quantile of
      |z_j - E[z_j | s_k]|; averaged over the values of s_k: the deviation that remains once s_k is fixed;
    - divided by max |z_j - E[z_j]| over all samples, and subtracted from 1: IRS[j, k].

    A latent's score is max_k IRS[j, k] (its parent source is the argmax), and ``score`` is the average of the
    active latents' scores weighted by their max deviation. Latents with zero variance are inactive: they get
    ``nan`` and parent -1, and with no active latent ``score`` is 0 (disentanglement_lib's conventions).

    IRS does not ask that every source be captured: a representation that drops a source, or copies one,
    can still score 1. Independent noise scores about 1 - q/max, e.g. about 0.01 for uniform noise.

    Returns ``{"score": float, "per_latent": (D,) array, "parents": (D,) int array, "irs_matrix": (D, K)
    array, "num_active_dims": int}``. Raises ``ValueError`` for ``diff_quantile`` outside (0, 1], a constant
    source, non-finite values, mismatched or too few samples, or wrong dimensions.
    """
    source_array, latent_array = _inputs.paired_arrays(sources, latents, "IRS")
    if not 0 < diff_quantile <= 1:
        raise ValueError(f"diff_quantile must be in (0, 1], got {diff_quantile}")
    if n_bins < 2:
        raise ValueError(f"n_bins must be at least 2, got {n_bins}")
    _inputs.encoded_sources(source_array, "IRS")  # refuses constant sources
    # float_sources shifts integer sources before the cast: uint64 labels near 2**64 would merge as float64.
    groups = [histogram_codes(column, n_bins)[0] for column in _inputs.float_sources(source_array).T]
    z = latent_array.astype(np.float64)
    n_latents = z.shape[1]
    active = z.var(axis=0) > 0

    per_latent = np.full(n_latents, np.nan)
    parents = np.full(n_latents, -1)
    matrix = np.full((n_latents, len(groups)), np.nan)
    if not active.any():
        return {"score": 0.0, "per_latent": per_latent, "parents": parents, "irs_matrix": matrix,
                "num_active_dims": 0}
    live = z[:, active]
    max_deviation = np.abs(live - live.mean(axis=0)).max(axis=0)
    remaining = np.zeros((live.shape[1], len(groups)))
    for k, codes in enumerate(groups):
        values = np.unique(codes)
        for value in values:
            group = live[codes == value]
            remaining[:, k] += np.percentile(np.abs(group - group.mean(axis=0)), diff_quantile * 100, axis=0)
        remaining[:, k] /= values.size
    robust = 1.0 - remaining / max_deviation[:, None]
    matrix[active] = robust
    per_latent[active] = robust.max(axis=1)
    parents[active] = robust.argmax(axis=1)
    return {
        "score": float(np.average(per_latent[active], weights=max_deviation)),
        "per_latent": per_latent,
        "parents": parents,
        "irs_matrix": matrix,
        "num_active_dims": int(active.sum()),
    }
