"""Flatness (Michlo et al., disent): how straight and axis-aligned each factor's traversal is in latent space."""

from __future__ import annotations

import numpy as np

from .sampling import FactorSampler, latent_batch, require, traversable_factors


def flatness(sampler: FactorSampler, *, repeats: int = 1024, random_state: int | None = 0) -> dict:
    """Width of each factor's traversal divided by the length of the path through it, as disent computes it.

    For factor k with S_k >= 2 values, each of ``repeats`` traversals (the factors of a random observation,
    with k run through its S_k values in order) gives latents z_0 .. z_{S_k - 1}, and:

    - width_p: the largest p-norm distance between two of them;
    - steps_p: the S_k distances |z_{i+1} - z_i|_p with wrap-around (z_{S_k} = z_0), the largest of which is
      dropped (it is usually the wrap-around step), leaving S_k - 1.

    ave_width_p is the mean width over repeats and ave_length_p = (S_k - 1) x the mean kept step; a factor's
    flatness is ave_width / ave_length (0 when the latents do not move at all). ``flatness`` is the mean over
    factors of width_l2 / length_l1: 1 for a straight, axis-aligned traversal with even steps, 1/sqrt(2) for
    one spread evenly over two latents, smaller for curved or noisy paths, 0 for a factor the latents ignore.
    ``flatness_l1`` and ``flatness_l2`` use the same norm for both. Factors with a single value are skipped.

    Returns ``{"flatness", "flatness_l1", "flatness_l2", "width_l1", "width_l2", "length_l1", "length_l2":
    float (means over factors), "per_factor": (K,) array of the width_l2 / length_l1 ratios (nan for skipped
    factors)}``. The sampler needs ``factor_sizes`` and ``traverse``. Raises ``ValueError`` for ``repeats`` < 1,
    no factor with 2 values or more, or latents that are not finite numeric 2-D arrays of the traversal's
    length; ``TypeError`` for a sampler without those members.
    """
    require(sampler, ("factor_sizes", "traverse"), "flatness")
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    sizes, used = traversable_factors(sampler, "flatness")
    rng = np.random.RandomState(random_state)
    width = {1: np.full(len(sizes), np.nan), 2: np.full(len(sizes), np.nan)}
    length = {1: np.full(len(sizes), np.nan), 2: np.full(len(sizes), np.nan)}
    for k in used:
        widths, steps = {1: [], 2: []}, {1: [], 2: []}
        for _ in range(repeats):
            z = latent_batch(sampler.traverse(k, rng))
            if z.shape[0] != sizes[k]:
                raise ValueError(f"traverse({k}) returned {z.shape[0]} rows for a factor of {sizes[k]} values")
            for p in (1, 2):
                distances = np.linalg.norm(z[:, None, :] - z[None, :, :], ord=p, axis=-1)
                widths[p].append(distances.max())
                step = np.linalg.norm(np.roll(z, -1, axis=0) - z, ord=p, axis=-1)
                steps[p].append(np.sort(step)[:-1])  # drop the largest step
        for p in (1, 2):
            width[p][k] = np.mean(widths[p])
            length[p][k] = (sizes[k] - 1) * np.mean(steps[p])

    def ratio(w: np.ndarray, ell: np.ndarray) -> np.ndarray:
        out = np.full(len(sizes), np.nan)
        out[used] = np.where(ell[used] > 0, w[used] / np.where(ell[used] > 0, ell[used], 1.0), 0.0)
        return out

    per_factor = ratio(width[2], length[1])
    return {
        "flatness": float(np.nanmean(per_factor)),
        "flatness_l1": float(np.nanmean(ratio(width[1], length[1]))),
        "flatness_l2": float(np.nanmean(ratio(width[2], length[2]))),
        "width_l1": float(np.nanmean(width[1])),
        "width_l2": float(np.nanmean(width[2])),
        "length_l1": float(np.nanmean(length[1])),
        "length_l2": float(np.nanmean(length[2])),
        "per_factor": per_factor,
    }
