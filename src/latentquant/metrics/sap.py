"""SAP: the separated attribute predictability score (Kumar et al. 2018), as disentanglement_lib computes it."""

from __future__ import annotations

import warnings
from typing import Literal

import numpy as np

from . import _inputs

FactorType = Literal["continuous", "discrete"]


def sap(
    sources: np.ndarray,
    latents: np.ndarray,
    *,
    factor_type: FactorType = "continuous",
    test_fraction: float = 1 / 3,
    random_state: int | None | np.random.RandomState = 0,
) -> float:
    """Mean over sources k of the gap between the two largest entries of column k of the score matrix.

    The score matrix S (D, K) says how well each single latent predicts each source:

    - ``factor_type="continuous"``: S[j, k] = R^2 of the 1-D linear regression of s_k on z_j, i.e. the squared
      Pearson correlation (0 for a latent with variance below 1e-12). Computed on all samples.
    - ``factor_type="discrete"``: S[j, k] = test accuracy of ``LinearSVC(C=0.01, class_weight="balanced")``
      fitted on z_j alone to predict the label-encoded s_k, on a seeded split holding out ``test_fraction``.

    Both are disentanglement_lib's choices (its gin default for studies is the discrete one, with separate
    10,000 / 5,000 draws; here the split is of the arrays given). Needs D >= 2; raises ``ValueError`` for a
    constant source, non-finite values, mismatched or too few samples, or wrong dimensions.
    """
    source_array, latent_array = _inputs.paired_arrays(sources, latents, "SAP", min_latents=2)
    codes, _ = _inputs.encoded_sources(source_array, "SAP")
    if factor_type == "continuous":
        scores = r_squared_matrix(_inputs.float_sources(source_array), latent_array.astype(np.float64))
    elif factor_type == "discrete":
        scores = _classification_matrix(codes, latent_array.astype(np.float64), test_fraction, random_state)
    else:
        raise ValueError(f"factor_type must be 'continuous' or 'discrete', got {factor_type!r}")
    return float(_inputs.top_two_gap(scores, axis=0).mean())


def r_squared_matrix(sources: np.ndarray, latents: np.ndarray) -> np.ndarray:
    """(D, K) squared correlations between each latent and each source; constant latents score 0."""
    z = latents - latents.mean(axis=0)
    s = sources - sources.mean(axis=0)
    var_z = (z * z).mean(axis=0)
    var_s = (s * s).mean(axis=0)
    cov = z.T @ s / z.shape[0]
    live = var_z > 1e-12
    return np.where(live[:, None], cov**2 / (np.where(live, var_z, 1.0)[:, None] * var_s[None, :]), 0.0)


def _classification_matrix(
    codes: np.ndarray, latents: np.ndarray, test_fraction: float, random_state: int | None | np.random.RandomState
) -> np.ndarray:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.svm import LinearSVC

    n = codes.shape[0]
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    n_test = max(1, round(n * test_fraction))
    if n - n_test < 1:
        raise ValueError(f"SAP with factor_type='discrete' needs a non-empty training split, got N = {n}")
    train, test = _inputs.train_test_indices(n, n - n_test, n_test, random_state)
    scores = np.zeros((latents.shape[1], codes.shape[1]))
    for k in range(codes.shape[1]):
        y = codes[:, k]
        if np.unique(y[train]).size < 2:
            continue  # nothing to learn from a single class; every latent scores 0 for this source
        for j in range(latents.shape[1]):
            model = LinearSVC(C=0.01, class_weight="balanced")
            with warnings.catch_warnings():
                # A single feature rarely reaches LinearSVC's tolerance; the reference ignores this too.
                warnings.simplefilter("ignore", ConvergenceWarning)
                model.fit(latents[train, j : j + 1], y[train])
            scores[j, k] = np.mean(model.predict(latents[test, j : j + 1]) == y[test])
    return scores
