"""Ground-truth-factor datasets: ``load(name, path=None, **options)`` returns a :class:`GroundTruthData`."""

from __future__ import annotations

import os
from collections.abc import Callable

from latentquant.data.base import GroundTruthData
from latentquant.data.nvlabs import load_falcor3d, load_isaac3d
from latentquant.data.shapes3d import load_shapes3d
from latentquant.errors import UserError

# name -> loader(path=None, **options); a loader reads the official file at ``path`` or, with no path,
# builds (and caches) a procedural look-alike.
DATASETS: dict[str, Callable[..., GroundTruthData]] = {
    "shapes3d": load_shapes3d, "falcor3d": load_falcor3d, "isaac3d": load_isaac3d,
}


def load(name: str, path: str | None = None, **options) -> GroundTruthData:
    """Load dataset ``name`` from the official file at ``path``, or its look-alike when path is None."""
    loader = DATASETS.get(name)
    if loader is None:
        raise UserError(f"unknown dataset '{name}'; known datasets: {', '.join(sorted(DATASETS))}")
    if path is not None:
        path = os.path.expanduser(os.fspath(path))  # `data.path=~/x.h5` reaches us unexpanded from the shell
    return loader(path=path, **options)


__all__ = ["DATASETS", "GroundTruthData", "load"]
