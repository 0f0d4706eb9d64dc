"""Plain helpers shared by several test modules (fixtures live in conftest.py)."""

from __future__ import annotations

import numpy as np


def factorial_sources(sizes: tuple[int, ...], repeats: int) -> np.ndarray:
    """Every combination of source values, each repeated: sources are exactly independent of each other."""
    axes = np.meshgrid(*[np.arange(s) for s in sizes], indexing="ij")
    grid = np.stack([a.ravel() for a in axes], axis=1)
    return np.repeat(grid, repeats, axis=0)
