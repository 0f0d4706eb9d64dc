"""The FactorVAE score (Kim & Mnih 2018), as disentanglement_lib computes it, through a factor sampler.

Unlike the other metrics this one intervenes on the data: it needs batches in which one factor is held fixed,
so it takes a :class:`~latentquant.metrics.sampling.FactorSampler` rather than arrays.
`latentquant.evaluate.DatasetSampler` provides one for any dataset and model; any object with the three
members used here (``num_factors``, ``sample``, ``sample_fixed``) will do.
"""

from __future__ import annotations

import numpy as np

from . import _inputs
from .sampling import FactorSampler, require

__all__ = ["FactorSampler", "factorvae_score"]  # FactorSampler lives in .sampling; importable here as before


def factorvae_score(
    sampler: FactorSampler,
    *,
    batch_size: int = 64,
    n_train: int = 10_000,
    n_eval: int = 5_000,
    n_variance: int = 10_000,
    prune_threshold: float = 0.05,
    random_state: int | None = 0,
) -> dict:
    """FactorVAE score: accuracy of a majority-vote classifier from argmin-variance latent to fixed factor.

    1. Scale: the standard deviation of each latent over ``n_variance`` random observations. Latents with a
       standard deviation below ``prune_threshold`` are inactive.
    2. A vote: pick a factor k uniformly, draw ``batch_size`` observations sharing a value of k, divide
       their latents by the scale, and take the active latent j with the smallest variance (ddof 1).
    3. The classifier maps each latent j to the factor it was voted for most often among ``n_train`` votes
       (ties to the lower factor index); the score is its accuracy on ``n_eval`` fresh votes.

    These are disentanglement_lib's defaults and rules. Returns ``{"score": eval accuracy,
    "train_accuracy": float, "active_latents": (D,) bool array, "votes": (D, K) int array of training
    votes}``. With no active latent both accuracies are 0 (disentanglement_lib's convention). Raises
    ``ValueError`` for sizes that are too small or latents that are not a finite, numeric 2-D array, and
    ``TypeError`` for a sampler without those three members.
    """
    require(sampler, ("num_factors", "sample", "sample_fixed"), "the FactorVAE score")
    for name, value, least in (
        ("batch_size", batch_size, 2), ("n_train", n_train, 1), ("n_eval", n_eval, 1), ("n_variance", n_variance, 2)
    ):
        if value < least:
            raise ValueError(f"{name} must be at least {least}, got {value}")
    rng = np.random.RandomState(random_state)
    reference = _inputs.as_matrix(sampler.sample(n_variance, rng), "latents", "(n, D)").astype(np.float64)
    scale = reference.std(axis=0)
    active = scale >= prune_threshold
    n_factors = sampler.num_factors
    if not active.any():
        empty = np.zeros((reference.shape[1], n_factors), dtype=np.int64)
        return {"score": 0.0, "train_accuracy": 0.0, "active_latents": active, "votes": empty}

    votes = _vote_counts(sampler, n_train, batch_size, scale, active, rng)
    assignment = votes.argmax(axis=1)  # latent -> its most voted factor
    latents = np.arange(votes.shape[0])
    train_accuracy = votes[latents, assignment].sum() / n_train
    eval_votes = _vote_counts(sampler, n_eval, batch_size, scale, active, rng)
    score = eval_votes[latents, assignment].sum() / n_eval
    return {"score": float(score), "train_accuracy": float(train_accuracy), "active_latents": active, "votes": votes}


def _vote_counts(
    sampler: FactorSampler,
    n_votes: int,
    batch_size: int,
    scale: np.ndarray,
    active: np.ndarray,
    rng: np.random.RandomState,
) -> np.ndarray:
    """(D, K) counts of (argmin-variance latent, fixed factor) over ``n_votes`` batches."""
    counts = np.zeros((scale.size, sampler.num_factors), dtype=np.int64)
    candidates = np.flatnonzero(active)
    for _ in range(n_votes):
        factor = rng.randint(sampler.num_factors)
        batch = np.asarray(sampler.sample_fixed(factor, batch_size, rng), dtype=np.float64)
        variances = np.var(batch[:, candidates] / scale[candidates], axis=0, ddof=1)
        counts[candidates[np.argmin(variances)], factor] += 1
    return counts
