"""``load(name, path=None, **options)``: find a dataset's loader by name, and downscale files stored at one size."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from ..errors import UserError
from .base import GroundTruthData
from .catalog import DSPRITES
from .dsprites import load_dsprites
from .mpi3d import load_mpi3d
from .nvlabs import load_falcor3d, load_isaac3d
from .own import load_arrays, load_images
from .shapes3d import load_shapes3d

# name -> loader(path=None, **options); a loader reads the official file at ``path`` or, with no path,
# builds (and caches) a procedural look-alike.
DATASETS: dict[str, Callable[..., GroundTruthData]] = {
    "dsprites": load_dsprites, "falcor3d": load_falcor3d, "isaac3d": load_isaac3d, "mpi3d": load_mpi3d,
    "shapes3d": load_shapes3d, "images": load_images, "arrays": load_arrays,
}


# Datasets whose files exist at one resolution only; a smaller `image_size` is made by area-averaging once on
# load. The Shapes3D and MPI3D look-alikes render any size themselves, so for them this applies to official files.
# MPI3D is "as the file stores" because the official files are 64x64 but `data make mpi3d --image-size N`
# writes the same layout at N, and both must load.
NATIVE_SIZE: dict[str, int | None] = {"dsprites": DSPRITES.native_size, "mpi3d": None,
                                     "shapes3d": None}  # None: as the file stores
LOOKALIKE_ANY_SIZE = {"mpi3d", "shapes3d"}


def load(name: str, path: str | None = None, **options) -> GroundTruthData:
    """Load dataset ``name`` from the official file at ``path``, or its look-alike when path is None.

    For files stored at one resolution (dSprites, MPI3D, Shapes3D: 64x64), ``image_size`` may be a divisor:
    the images are then area-averaged in memory after loading (the CPU preset trains at 16x16). What every
    model needs is checked here, so `data check` and `train` accept the same files: square images, two or more.
    """
    data = _load(name, path, **options)
    where = path if path is not None else f"the {name} look-alike"
    if data.factors.shape != (len(data), data.num_factors):
        raise UserError(f"{where}: {len(data)} images but factors of shape {tuple(data.factors.shape)}")
    if data.images.ndim != 4 or data.images.shape[1] != data.images.shape[2]:
        raise UserError(f"{where}: images must be square (N, H, H, C), got shape {tuple(data.images.shape)}")
    if len(data) < 2:
        raise UserError(f"{where}: holds {len(data)} image(s); training and evaluation need at least 2")
    return data


def _load(name: str, path: str | None = None, **options) -> GroundTruthData:
    loader = DATASETS.get(name)
    if loader is None:
        raise UserError(f"unknown dataset '{name}'; known datasets: {', '.join(sorted(DATASETS))}")
    if path is not None:
        path = os.path.expanduser(os.fspath(path))  # `data.path=~/x.h5` reaches us unexpanded from the shell
    size = options.get("image_size")
    if name not in NATIVE_SIZE or size is None or (path is None and name in LOOKALIKE_ANY_SIZE):
        return loader(path=path, **options)
    native = NATIVE_SIZE[name]
    if native is not None and size == native:
        return loader(path=path, **options)
    data = loader(path=path, **{**options, "image_size": native})
    stored = data.images.shape[1]
    if size == stored:
        return data
    if not isinstance(size, int) or isinstance(size, bool) or size < 1 or stored % size:
        raise UserError(f"{path} holds {stored}x{stored} images; image_size must divide {stored}, got {size!r}")
    return replace(data, images=downscale(data.images, stored // size))


def downscale(images: np.ndarray, factor: int, block: int = 8192) -> np.ndarray:
    """Area-average (N, H, W, C) uint8 images by an integer factor, a block of rows at a time."""
    n, h, w, c = images.shape
    out = np.empty((n, h // factor, w // factor, c), dtype=np.uint8)
    for start in range(0, n, block):
        x = np.asarray(images[start : start + block], dtype=np.float32)
        x = x.reshape(len(x), h // factor, factor, w // factor, factor, c).mean(axis=(2, 4))
        out[start : start + block] = np.rint(x).astype(np.uint8)
    return out
