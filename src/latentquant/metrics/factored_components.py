"""Factored components (Michlo et al., disent): linearity, axis alignment and distance ordering of traversals."""

from __future__ import annotations

import warnings

import numpy as np

from .sampling import FactorSampler, latent_batch, require, traversable_factors


def factored_components(
    sampler: FactorSampler,
    *,
    repeats: int = 1024,
    num_samples: int = 64,
    global_subset_size: int = 32,
    random_state: int | None = 0,
) -> dict:
    """How each factor's traversal sits in latent space, and whether latent distances order like factor ones.

    Each factor k with S_k >= 2 values is traversed ``repeats`` times (the factors of a random observation,
    k run through its values in order), giving latents Z (S_k, D). With "the normalised share" of a list of
    n non-negative values meaning (largest / sum - 1/n) / (1 - 1/n) (0 when they sum to 0):

    - ``linear_ratio``: the normalised share of the largest eigenvalue of Z's covariance (D eigenvalues): 1
      when the traversal lies on a line, whatever its direction;
    - ``axis_ratio``: the normalised share of the largest per-latent variance: 1 when only one latent moves;
    - ``axis_alignment``: axis_ratio / linear_ratio (per traversal, then averaged);
    - ``axis_ratio_ave``: the normalised share of the per-latent variances averaged over the repeats;
    - distances, from ``num_samples`` random triplets (a, p, n) of points per traversal: the ground distance
      is |i_a - i_p| (the factor's index difference), the latent distance the l1 or l2 norm of z_a - z_p, and
      likewise for (a, n). ``rank_corr_factor_l*`` is the Spearman and ``linear_corr_factor_l*`` the Pearson
      correlation of the ground with the latent distances (both pairs of every triplet pooled over the
      repeats); ``same_order_factor_l*`` the fraction of triplets where p and n are ordered the same way
      (closer, equal, farther) by both.

    Per-factor values are averaged over repeats and then over factors: a geometric mean for the ratios and
    the same-order fractions (disent's choice: one factor at 0 pulls the score to 0), an arithmetic mean for
    the correlations (disent takes the geometric mean there too, which is NaN as soon as one factor's
    correlation is negative). The ``*_global_*`` keys repeat the distance scores on ``repeats`` random
    batches of ``global_subset_size`` observations, with the l1 distance between factor index vectors as the
    ground distance. A correlation whose latent distances are all equal (the latents ignore the factor) is 0,
    where disent gets NaN. disent's distances between images are not computed: they do not involve the
    representation.

    Returns a dict of those floats plus ``"per_factor"``: {key: (K,) array, nan for factors with one value}.
    The sampler needs ``factor_sizes``, ``traverse`` and ``sample_labelled``. Raises ``ValueError`` for
    sizes below 1 (``global_subset_size`` below 2), fewer than 2 latents, no factor with 2 values or more, or
    latents that are not finite numeric 2-D arrays; ``TypeError`` for a sampler without those members.
    """
    require(sampler, ("factor_sizes", "traverse", "sample_labelled"), "factored components")
    for name, value, least in (("repeats", repeats, 1), ("num_samples", num_samples, 1),
                               ("global_subset_size", global_subset_size, 2)):
        if value < least:
            raise ValueError(f"{name} must be at least {least}, got {value}")
    sizes, used = traversable_factors(sampler, "factored components")
    rng = np.random.RandomState(random_state)

    per_factor: dict[str, np.ndarray] = {}
    for k in used:
        values = _along_factor(sampler, k, sizes[k], repeats, num_samples, rng)
        for key, value in values.items():
            per_factor.setdefault(key, np.full(len(sizes), np.nan))[k] = value

    result: dict = {}
    for key, values in per_factor.items():
        kept = values[used]
        if "corr" in key:
            result[key] = float(kept.mean())
        else:
            result[key] = float(np.exp(np.log(kept).mean())) if (kept > 0).all() else 0.0

    ground, latent = [], {1: [], 2: []}
    for _ in range(repeats):
        factors, z = sampler.sample_labelled(global_subset_size, rng)
        z = latent_batch(z)
        factors = np.asarray(factors, dtype=np.float64)
        triplets = rng.randint(len(z), size=(3, num_samples))
        ground.append(_pair_distances(factors, triplets, 1))
        for p in (1, 2):
            latent[p].append(_pair_distances(z, triplets, p))
    ground_all = np.concatenate(ground, axis=1)
    for p in (1, 2):
        for name, value in _distance_scores(ground_all, np.concatenate(latent[p], axis=1)).items():
            result[f"{name}_global_l{p}"] = value
    result["per_factor"] = per_factor
    return result


def normalised_share(values: np.ndarray) -> float:
    """(largest / sum - 1/n) / (1 - 1/n) of n >= 2 non-negative values; 0 when they sum to 0."""
    total = values.sum()
    if total <= 0:
        return 0.0
    n = values.size
    return float((values.max() / total - 1 / n) / (1 - 1 / n))


def _along_factor(
    sampler: FactorSampler, k: int, size: int, repeats: int, num_samples: int, rng: np.random.RandomState
) -> dict[str, float]:
    axis, linear, alignment, axis_variances = [], [], [], []
    ground, latent = [], {1: [], 2: []}
    for _ in range(repeats):
        z = latent_batch(sampler.traverse(k, rng))
        if z.shape[0] != size:
            raise ValueError(f"traverse({k}) returned {z.shape[0]} rows for a factor of {size} values")
        if z.shape[1] < 2:
            raise ValueError(f"factored components need at least 2 latents, got {z.shape[1]}")
        variances = z.var(axis=0, ddof=1)
        eigenvalues = np.clip(np.linalg.eigvalsh(np.atleast_2d(np.cov(z, rowvar=False))), 0.0, None)
        axis.append(normalised_share(variances))
        linear.append(normalised_share(eigenvalues))
        alignment.append(axis[-1] / (linear[-1] + 1e-20))
        axis_variances.append(variances)
        triplets = rng.randint(size, size=(3, num_samples))
        ground.append(_pair_distances(np.arange(size, dtype=np.float64)[:, None], triplets, 1))
        for p in (1, 2):
            latent[p].append(_pair_distances(z, triplets, p))
    out = {
        "linear_ratio": float(np.mean(linear)),
        "axis_ratio": float(np.mean(axis)),
        "axis_alignment": float(np.mean(alignment)),
        "axis_ratio_ave": normalised_share(np.mean(axis_variances, axis=0)),
    }
    ground_all = np.concatenate(ground, axis=1)
    for p in (1, 2):
        for name, value in _distance_scores(ground_all, np.concatenate(latent[p], axis=1)).items():
            out[f"{name}_factor_l{p}"] = value
    return out


def _pair_distances(points: np.ndarray, triplets: np.ndarray, p: int) -> np.ndarray:
    """(2, num) p-norm distances from a to p and from a to n, for triplet indices (3, num)."""
    a, pos, neg = (points[t] for t in triplets)
    return np.stack([np.linalg.norm(a - pos, ord=p, axis=-1), np.linalg.norm(a - neg, ord=p, axis=-1)])


def _distance_scores(ground: np.ndarray, latent: np.ndarray) -> dict[str, float]:
    """Correlations of pooled (a, p) and (a, n) distances, and the fraction of triplets ordered alike."""
    from scipy.stats import pearsonr, spearmanr

    same = np.sign(ground[0] - ground[1]) == np.sign(latent[0] - latent[1])
    g, z = ground.ravel(), latent.ravel()
    if np.ptp(g) == 0 or np.ptp(z) == 0:
        rank = linear = 0.0  # no ordering to agree with
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rank, linear = float(spearmanr(g, z)[0]), float(pearsonr(g, z)[0])
    return {"rank_corr": rank, "linear_corr": linear, "same_order": float(same.mean())}
