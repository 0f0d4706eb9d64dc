"""A permutation null for NMI matrices: which sources and latents carry more information than estimator noise.

An NMI line (a source's row, a latent's column) that carries no information is not zero: the k-NN and
plug-in estimators return small positive values whose pattern depends on the tie-breaking jitter and on
sampling noise. InfoC and InfoM divide the line's largest entry by its sum, so such a line contributes anywhere
between "uniform" and "perfectly concentrated". The null here is what the same estimator returns on the same
latents after each source column is shuffled: any dependence is destroyed, the marginals are kept.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LineSignificance:
    """Which lines of an NMI matrix (K sources x D latents) stand above their permutation null."""

    sources: np.ndarray  # (K,) bool: the source's largest NMI is above its null
    latents: np.ndarray  # (D,) bool: the latent's largest NMI is above its null
    source_floor: np.ndarray  # (K,) the threshold each source's largest NMI was compared with
    latent_floor: np.ndarray  # (D,)


def line_significance(
    nmi: np.ndarray,
    estimate: Callable[[np.ndarray], np.ndarray],
    codes: np.ndarray,
    *,
    n_permutations: int,
    z: float,
    rng: np.random.RandomState,
) -> LineSignificance:
    """Compare each line's largest NMI with the distribution of that maximum under ``n_permutations`` shuffles.

    The floor of a line is mean + ``z`` standard deviations of the null's line maxima. A margin of several
    standard deviations, rather than an empirical quantile, is what makes the decision stable: a line of pure
    noise is itself one draw from the null, so a quantile test would keep it in a fixed fraction of seeds
    and the score would jump whenever it did. Measured on the k-NN estimator with tied latents (N = 1,000
    and 2,000, 40 seeds each, 20 shuffles): uncaptured sources reached at most 4.1 standard deviations above
    their null, captured ones at least 100; hence the default z of 8 in :func:`~latentquant.metrics.infomec`.
    """
    maxima_rows = np.empty((n_permutations, nmi.shape[0]))
    maxima_cols = np.empty((n_permutations, nmi.shape[1]))
    for p in range(n_permutations):
        shuffled = np.stack([rng.permutation(column) for column in codes.T], axis=1)
        null = estimate(shuffled)
        maxima_rows[p] = null.max(axis=1)
        maxima_cols[p] = null.max(axis=0)
    source_floor = _floor(maxima_rows, z)
    latent_floor = _floor(maxima_cols, z)
    return LineSignificance(
        sources=nmi.max(axis=1) > source_floor,
        latents=nmi.max(axis=0) > latent_floor,
        source_floor=source_floor,
        latent_floor=latent_floor,
    )


def _floor(maxima: np.ndarray, z: float) -> np.ndarray:
    return maxima.mean(axis=0) + z * maxima.std(axis=0, ddof=1)
