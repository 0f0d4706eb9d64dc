"""The one sampler interface of the metrics that intervene on the data.

Most metrics score arrays of (sources, latents). A few need observations chosen by their factors: batches with
one factor held fixed (FactorVAE), pairs that share one factor (BetaVAE), traversals of one factor with the
others fixed (flatness, factored components). They take a :class:`FactorSampler`, which draws those
observations and returns their latents. `latentquant.evaluate.DatasetSampler` implements it for any dataset
and encoder. Each metric uses only the members it needs, so a sampler written for one metric need not have
them all; a missing one is a ``TypeError`` naming it (:func:`require`):

- FactorVAE: ``num_factors``, ``sample``, ``sample_fixed``;
- BetaVAE: ``num_factors``, ``sample_pairs``;
- flatness: ``factor_sizes``, ``traverse``;
- factored components: ``factor_sizes``, ``traverse``, ``sample_labelled``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from . import _inputs


@runtime_checkable
class FactorSampler(Protocol):
    """Draws encoded observations from a ground-truth dataset, chosen by their factors.

    Factors are class indices 0..factor_sizes[k]-1; latents come back as (n, D) arrays.
    """

    @property
    def num_factors(self) -> int: ...

    def sample(self, n: int, rng: np.random.RandomState) -> np.ndarray:
        """Latents (n, D) of n random observations."""
        ...

    def sample_fixed(self, factor: int, n: int, rng: np.random.RandomState) -> np.ndarray:
        """Latents (n, D) of n random observations sharing one random value of ``factor``."""
        ...

    @property
    def factor_sizes(self) -> Sequence[int]: ...

    def sample_pairs(self, factor: int, n: int, rng: np.random.RandomState) -> tuple[np.ndarray, np.ndarray]:
        """Latents (z1, z2), each (n, D), of n pairs of random observations; pair i shares its (random) value of
        ``factor``, every other factor is drawn independently for each member."""
        ...

    def sample_labelled(self, n: int, rng: np.random.RandomState) -> tuple[np.ndarray, np.ndarray]:
        """(factors (n, K) int, latents (n, D)) of n random observations."""
        ...

    def traverse(self, factor: int, rng: np.random.RandomState) -> np.ndarray:
        """Latents (factor_sizes[factor], D) of a traversal: the factors of one random observation, with
        ``factor`` set to 0, 1, ..., factor_sizes[factor] - 1 in that order."""
        ...


def require(sampler: object, methods: Sequence[str], metric: str) -> None:
    """Raise ``TypeError`` naming the members of ``methods`` that ``sampler`` lacks."""
    missing = [name for name in methods if not hasattr(sampler, name)]
    if missing:
        raise TypeError(f"{metric} needs a sampler with {', '.join(methods)}; {type(sampler).__name__} lacks "
                        f"{', '.join(missing)}")


def traversable_factors(sampler: object, metric: str) -> tuple[list[int], list[int]]:
    """(every factor's size, the factors with at least 2 values): a traversal along a 1-value factor is a point,
    so metrics over traversals skip those, and need at least one of the others (``ValueError`` otherwise)."""
    sizes = [int(s) for s in sampler.factor_sizes]  # type: ignore[attr-defined]
    used = [k for k, s in enumerate(sizes) if s >= 2]
    if not used:
        raise ValueError(f"{metric} needs a factor with at least 2 values, got sizes {sizes}")
    return sizes, used


def latent_batch(values: object, name: str = "latents") -> np.ndarray:
    """A sampler's output as a finite float64 (n, D) array, or ``ValueError`` naming the problem."""
    return _inputs.as_matrix(values, name, "(n, D)").astype(np.float64)
