"""UDR: unsupervised disentanglement ranking (Duan et al. 2020), as disentanglement_lib computes it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

from . import _inputs

Correlation = Literal["spearman", "lasso"]


def udr(
    latents_list: Sequence[np.ndarray],
    *,
    correlation: Correlation = "spearman",
    activity: Sequence[np.ndarray] | None = None,
    activity_threshold: float = 0.01,
    random_state: int | None = 0,
) -> dict:
    """Rank models by how well their latents agree, one to one, with those of other models on the same inputs.

    ``latents_list`` holds one (N, D_i) array per model, row n of each from the same input. Each model's
    latents are standardised and the inactive ones set to 0. A latent is active when its activity exceeds
    ``activity_threshold``: the given ``activity[i]`` (D_i,) values, e.g. each latent's mean KL divergence
    for a VAE as in disentanglement_lib, or by default its variance divided by the largest variance of its
    model (0.01: a tenth of the largest standard deviation).

    For each ordered pair (i, j), R (D_i, D_j) is the absolute Spearman correlation of each latent of i with
    each latent of j (``correlation="spearman"``, the paper's UDR), or the absolute coefficients of a
    scikit-learn ``Lasso(alpha=0.1)`` regressing j's latents on i's (``"lasso"``, UDR_L). Restricted to active
    latents, the pair's score is the mean of (mean over columns of max² / sum) and (mean over rows of the
    same), a row or column summing to 0 counting 0; 0 when either model has no active latent. A model's
    score is the median of the scores of the pairs (j, i), j != i.

    Returns ``{"model_scores": (M,) array, "pairwise": (M, M) array (nan on the diagonal), "correlations":
    M x M nested list of the raw R matrices over all latents (None on the diagonal), "active": list of (D_i,)
    bool arrays}``. Raises ``ValueError`` for fewer than 2 models, arrays that are not finite numeric 2-D
    arrays, different N, or activity of the wrong length.
    """
    if len(latents_list) < 2:
        raise ValueError(f"UDR compares models with each other: it needs at least 2, got {len(latents_list)}")
    if correlation not in ("spearman", "lasso"):
        raise ValueError(f"correlation must be 'spearman' or 'lasso', got {correlation!r}")
    arrays = [_inputs.rescaled_latents(_inputs.as_matrix(z, f"latents_list[{i}]", "(N, D)")).astype(np.float64)
              for i, z in enumerate(latents_list)]
    sizes = {z.shape[0] for z in arrays}
    if len(sizes) > 1:
        raise ValueError(f"every model's latents must have the same number of rows (one per input), got "
                         f"{[z.shape[0] for z in arrays]}")
    if arrays[0].shape[0] < 2:
        raise ValueError(f"UDR needs at least 2 samples, got {arrays[0].shape[0]}")
    for i, z in enumerate(arrays):
        if z.shape[1] < 1:
            raise ValueError(f"latents_list[{i}] has no columns")
    if activity is not None and len(activity) != len(arrays):
        raise ValueError(f"activity must have one array per model ({len(arrays)}), got {len(activity)}")

    active, prepared = [], []
    for i, z in enumerate(arrays):
        variance = z.var(axis=0)
        if activity is None:
            peak = variance.max()
            level = variance / peak if peak > 0 else np.zeros_like(variance)
        else:
            level = np.asarray(activity[i], dtype=np.float64).reshape(-1)
            if level.size != z.shape[1]:
                raise ValueError(f"activity[{i}] has {level.size} values for {z.shape[1]} latents")
        mask = (level > activity_threshold) & (variance > 0)
        std = np.sqrt(variance)
        standard = (z - z.mean(axis=0)) / np.where(std > 0, std, 1.0)
        active.append(mask)
        prepared.append(standard * mask)

    m = len(arrays)
    pairwise = np.full((m, m), np.nan)
    correlations: list[list[np.ndarray | None]] = [[None] * m for _ in range(m)]
    for i in range(m):
        for j in range(m):
            if i == j:
                continue
            if correlation == "spearman":
                matrix = _abs_spearman(prepared[i], prepared[j])
            else:
                matrix = _abs_lasso(prepared[i], prepared[j], random_state)
            correlations[i][j] = matrix
            pairwise[i, j] = relative_strength(matrix[active[i]][:, active[j]])
    scores = np.array([np.median(np.delete(pairwise[:, i], i)) for i in range(m)])
    return {"model_scores": scores, "pairwise": pairwise, "correlations": correlations, "active": active}


def relative_strength(matrix: np.ndarray) -> float:
    """(mean over columns of max² / sum + mean over rows of max² / sum) / 2 of a non-negative matrix.

    A line summing to 0 counts 0; an empty matrix scores 0. 1 for a permutation matrix, about 1/D for a
    uniform one.
    """
    r = np.asarray(matrix, dtype=np.float64)
    if r.size == 0:
        return 0.0

    def side(axis: int) -> float:
        top, total = r.max(axis=axis), r.sum(axis=axis)
        return float(np.where(total > 0, top**2 / np.where(total > 0, total, 1.0), 0.0).mean())

    return (side(0) + side(1)) / 2


def _abs_spearman(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|Spearman correlation| of each column of a with each column of b; 0 where a column is constant."""
    from scipy.stats import rankdata

    def standard_ranks(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ranks = rankdata(x, axis=0)
        ranks -= ranks.mean(axis=0)
        norm = np.sqrt((ranks**2).sum(axis=0))
        return ranks / np.where(norm > 0, norm, 1.0), norm > 0

    ra, live_a = standard_ranks(a)
    rb, live_b = standard_ranks(b)
    return np.abs(ra.T @ rb) * (live_a[:, None] & live_b[None, :])


def _abs_lasso(a: np.ndarray, b: np.ndarray, random_state: int | None) -> np.ndarray:
    """|coefficients| (D_a, D_b) of a Lasso(alpha=0.1) predicting each column of b from all columns of a."""
    from sklearn.linear_model import Lasso

    model = Lasso(alpha=0.1, random_state=random_state).fit(a, b)
    return np.abs(np.atleast_2d(model.coef_)).T
