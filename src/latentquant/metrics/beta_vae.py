"""The BetaVAE score (Higgins et al. 2017), as disentanglement_lib computes it, through a factor sampler."""

from __future__ import annotations

import numpy as np

from .sampling import FactorSampler, latent_batch, require


def beta_vae_score(
    sampler: FactorSampler,
    *,
    batch_size: int = 64,
    n_train: int = 10_000,
    n_eval: int = 5_000,
    random_state: int | None = 0,
) -> dict:
    """Accuracy of a linear classifier that tells, from pairs of observations, which factor they share.

    One training point: pick a factor k uniformly, draw ``batch_size`` pairs of observations where each pair
    shares its value of k (every other factor drawn independently), and take the mean over pairs of
    |z1 - z2| per latent: a (D,) feature whose entries for latents that encode k alone are 0. A
    scikit-learn ``LogisticRegression`` (its defaults, seeded) is fitted to predict k from ``n_train`` such
    points and scored on ``n_eval`` fresh ones. These are disentanglement_lib's rules and defaults.

    Returns ``{"score": eval accuracy, "train_accuracy": float}``. Chance is about 1/K; a representation that
    captures K - 1 factors can still score 1 (the shared factor is the one whose latents are not near 0).
    The sampler needs ``num_factors`` and ``sample_pairs``. Raises ``ValueError`` for sizes that are too
    small or latents that are not a finite, numeric 2-D array, and ``TypeError`` for a sampler without those
    members.
    """
    require(sampler, ("num_factors", "sample_pairs"), "the BetaVAE score")
    for name, value, least in (("batch_size", batch_size, 1), ("n_train", n_train, 2), ("n_eval", n_eval, 1)):
        if value < least:
            raise ValueError(f"{name} must be at least {least}, got {value}")
    if sampler.num_factors < 2:
        raise ValueError(f"the BetaVAE score needs at least 2 factors to tell apart, got {sampler.num_factors}")
    rng = np.random.RandomState(random_state)
    x_train, y_train = _points(sampler, n_train, batch_size, rng)
    x_eval, y_eval = _points(sampler, n_eval, batch_size, rng)
    if np.unique(y_train).size < 2:
        raise ValueError(f"n_train = {n_train} points all fixed the same factor; use more")
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(random_state=random_state).fit(x_train, y_train)
    return {
        "score": float(np.mean(model.predict(x_eval) == y_eval)),
        "train_accuracy": float(np.mean(model.predict(x_train) == y_train)),
    }


def _points(
    sampler: FactorSampler, n_points: int, batch_size: int, rng: np.random.RandomState
) -> tuple[np.ndarray, np.ndarray]:
    """(features (n_points, D), the factor each point held fixed (n_points,))."""
    features, labels = [], np.empty(n_points, dtype=np.int64)
    for i in range(n_points):
        labels[i] = rng.randint(sampler.num_factors)
        z1, z2 = sampler.sample_pairs(int(labels[i]), batch_size, rng)
        z1, z2 = latent_batch(z1), latent_batch(z2)
        if z1.shape != z2.shape:
            raise ValueError(f"sample_pairs returned latents of shapes {z1.shape} and {z2.shape}")
        features.append(np.abs(z1 - z2).mean(axis=0))
    return np.stack(features), labels
