"""MIG-sup (Li et al. 2020): MIG with the roles of sources and latents swapped."""

from __future__ import annotations

import numpy as np

from . import _inputs, _mi
from .mig import discretised_latents, mutual_info_matrix


def mig_sup(
    sources: np.ndarray,
    latents: np.ndarray,
    *,
    n_bins: int = 20,
    discrete_latents: bool | None = None,
) -> float:
    """Mean over latents j of the gap between the two largest I(s_k; z_j) / H(s_k) over sources k.

    MIG asks that each source be captured by one latent; MIG-sup asks that each latent capture one source,
    so a latent that mixes two sources scores 0 however informative it is. Latents are discretised as in
    :func:`~latentquant.metrics.mig` (``n_bins`` equal-width bins per continuous latent, label-encoding for
    discrete ones); I and H are plug-in estimates in nats. Needs K >= 2 sources; raises ``ValueError`` for a
    constant source, non-finite values, mismatched or too few samples, or wrong dimensions.
    """
    source_array, latent_array = _inputs.paired_arrays(sources, latents, "MIG-sup")
    if source_array.shape[1] < 2:
        raise ValueError(f"MIG-sup needs at least 2 sources (a gap between two), got {source_array.shape[1]}")
    codes, n_classes = _inputs.encoded_sources(source_array, "MIG-sup (normalised by source entropy)")
    latent_codes, n_codes = discretised_latents(latent_array, n_bins, discrete_latents)
    entropy = np.array([_mi.plugin_entropy(codes[:, k], c) for k, c in enumerate(n_classes)])
    nmi = mutual_info_matrix(codes, n_classes, latent_codes, n_codes) / entropy[:, None]
    return float(_inputs.top_two_gap(nmi, axis=0).mean())
