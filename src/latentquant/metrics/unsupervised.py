"""disentanglement_lib's unsupervised scores: how far the latents are from being independent."""

from __future__ import annotations

import numpy as np

from . import _inputs, _mi
from .mig import histogram_codes


def unsupervised_scores(latents: np.ndarray, sources: np.ndarray | None = None, *, n_bins: int = 20) -> dict:
    """Gaussian total correlation, Gaussian Wasserstein correlation and mean pairwise mutual information.

    With Σ the (D, D) sample covariance of the latents (``np.cov``, ddof 1) and diag(Σ) its diagonal:

    - ``gaussian_total_correlation`` = 0.5 (sum_j log Σ_jj - log det Σ): the KL divergence between N(0, Σ)
      and N(0, diag Σ), in nats; 0 for uncorrelated latents, -0.5 log(1 - ρ²) for two with correlation ρ.
    - ``gaussian_wasserstein_correlation`` = 2 tr Σ - 2 tr (diag(Σ)^½ Σ diag(Σ)^½)^½: the squared
      2-Wasserstein distance between the same two Gaussians; ``gaussian_wasserstein_correlation_norm`` divides
      it by tr Σ.
    - ``mutual_info_score``: each latent discretised into ``n_bins`` histogram bins, the plug-in mutual
      information (nats) of every ordered pair of different latents, averaged (D² - D pairs). The plug-in
      estimate is biased upwards, by about (n_bins - 1)² / (2N) for independent latents.

    These are disentanglement_lib's formulas. ``sources`` is accepted and ignored, so the function fits the
    (sources, latents) calling pattern. Latents with zero variance are left out of the Gaussian scores (a
    constant is independent of everything; disentanglement_lib would return NaN) and listed in
    ``constant_latents``; they count with MI 0 in ``mutual_info_score``.

    Raises ``ValueError`` for fewer than 2 latents or 2 samples, non-finite values, or wrong dimensions.
    """
    del sources
    z = _inputs.rescaled_latents(_inputs.as_matrix(latents, "latents", "(N, D)")).astype(np.float64)
    if z.shape[0] < 2:
        raise ValueError(f"the unsupervised scores need at least 2 samples, got {z.shape[0]}")
    if z.shape[1] < 2:
        raise ValueError(f"the unsupervised scores need at least 2 latents, got {z.shape[1]}")
    if n_bins < 2:
        raise ValueError(f"n_bins must be at least 2, got {n_bins}")
    live = z.var(axis=0) > 0
    if live.sum() >= 1:
        cov = np.atleast_2d(np.cov(z[:, live], rowvar=False))
        total, wasserstein = gaussian_total_correlation(cov), gaussian_wasserstein_correlation(cov)
        norm = wasserstein / np.trace(cov)
    else:
        total = wasserstein = norm = 0.0

    codes, n_codes = zip(*(histogram_codes(column, n_bins) for column in z.T), strict=True)
    codes = np.stack(codes, axis=1)
    d = z.shape[1]
    pairwise = np.zeros((d, d))
    for j in range(d):
        pairwise[j] = _mi.plugin_mutual_info(codes[:, j], n_codes[j], codes, list(n_codes))
    np.fill_diagonal(pairwise, 0.0)
    return {
        "gaussian_total_correlation": float(total),
        "gaussian_wasserstein_correlation": float(wasserstein),
        "gaussian_wasserstein_correlation_norm": float(norm),
        "mutual_info_score": float(pairwise.sum() / (d * d - d)),
        "mutual_info_matrix": pairwise,
        "constant_latents": np.flatnonzero(~live),
    }


def gaussian_total_correlation(cov: np.ndarray) -> float:
    """0.5 (sum log diag Σ - log det Σ): KL(N(0, Σ) || N(0, diag Σ)) in nats."""
    return float(0.5 * (np.log(np.diag(cov)).sum() - np.linalg.slogdet(cov)[1]))


def gaussian_wasserstein_correlation(cov: np.ndarray) -> float:
    """Squared 2-Wasserstein distance between N(0, Σ) and N(0, diag Σ).

    tr (D^½ Σ D^½)^½ is the sum of the square roots of the eigenvalues of the symmetric D^½ Σ D^½, which
    are those of D Σ: the same trace as disentanglement_lib's ``sqrtm`` of the row-scaled covariance.
    """
    root = np.sqrt(np.diag(cov))
    eigenvalues = np.linalg.eigvalsh(root[:, None] * cov * root[None, :])
    return float(2 * np.trace(cov) - 2 * np.sqrt(np.clip(eigenvalues, 0.0, None)).sum())
