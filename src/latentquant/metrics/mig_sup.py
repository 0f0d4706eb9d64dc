"""MIG-sup (Li et al. 2020): MIG with the roles of sources and latents swapped."""

from __future__ import annotations

import numpy as np

from . import _inputs
from .mig import source_latent_mutual_info


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
    mi, entropy = source_latent_mutual_info(sources, latents, "MIG-sup", n_bins, discrete_latents)
    nmi = mi / entropy[:, None]
    return float(_inputs.top_two_gap(nmi, axis=0).mean())
