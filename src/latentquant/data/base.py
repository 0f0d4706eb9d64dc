"""The dataset object every loader returns: images plus ground-truth factor labels."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class GroundTruthData:
    """Images with the factors that generated them.

    ``images`` is (N, H, W, C) uint8 (an array or a memory map); ``factors`` is (N, K) integer class
    indices in the file's own factor order; ``factor_values[k][factors[:, k]]`` gives the real values.
    Unlabelled data (your own images without a ``factors.csv``) has zero factors: ``factors`` is (N, 0), and
    evaluation skips the metrics that need labels. ``files``: each row's file, relative to its folder (data
    read from a folder of images; None otherwise).
    """

    name: str
    images: np.ndarray
    factors: np.ndarray
    factor_names: list[str]
    factor_sizes: list[int]
    factor_values: list[np.ndarray]
    files: list[str] | None = None

    def __len__(self) -> int:
        return len(self.images)

    @property
    def num_factors(self) -> int:
        return len(self.factor_names)

    @property
    def labelled(self) -> bool:
        return self.num_factors > 0

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])  # type: ignore[return-value]

    def values(self, index: np.ndarray | slice | None = None) -> np.ndarray:
        """Real factor values (float64) for the given rows."""
        rows = self.factors if index is None else self.factors[index]
        if not self.num_factors:
            return np.empty((len(rows), 0), dtype=np.float64)
        return np.stack([self.factor_values[k][rows[:, k]] for k in range(self.num_factors)], axis=1)
