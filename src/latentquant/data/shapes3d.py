"""3D Shapes (Kim & Mnih 2018): read the official ``3dshapes.h5``, or write and read a procedural look-alike.

File layout (official and look-alike alike): HDF5 dataset ``images`` uint8 (N, 64, 64, 3) and ``labels``
float64 (N, 6) holding the factor *values* (not class indices), rows in row-major factor order with
orientation fastest.
"""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np

from ..errors import UserError
from ._common import (
    atomic_output,
    check_image_size,
    classes_to_values,
    default_cache_dir,
    ensure_lookalike,
    grid_classes,
    one_line,
    subset_indices,
)
from .base import GroundTruthData
from .catalog import SHAPES3D

# Names for SHAPES3D's grid, which the code below, the tests and the docs read.
FACTOR_NAMES = list(SHAPES3D.factor_names)
FACTOR_SIZES = SHAPES3D.factor_sizes
FACTOR_VALUES = list(SHAPES3D.factor_values)
SHAPE_NAMES = ["cube", "cylinder", "sphere", "capsule"]
NUM_IMAGES = SHAPES3D.num_images

_LOOKALIKE_VERSION = 1  # bump when the renderer changes, so stale caches are not reused
_WRITE_BLOCK = 4800  # images rendered and written per step: bounds memory (59 MB at 64x64)
_CHUNK_IMAGES = 256  # HDF5 chunk: gzip level 1 keeps the full 64x64 grid near 1 GB and writes fast


def write_shapes3d_h5(path: str | os.PathLike, image_size: int = 64, subset: int | None = None,
                      seed: int = 0) -> Path:
    """Render the look-alike and write it in the official ``3dshapes.h5`` layout.

    ``subset``: number of images, drawn without replacement (seeded) and kept in grid order; None
    writes the whole 480,000-image grid. The file appears atomically: a killed run leaves no file.
    """
    # Imported here: reading files must not pay for (or depend on) the renderer.
    from .lookalike.shapes3d import render_shapes3d

    size = check_image_size(image_size, SHAPES3D)
    indices = subset_indices(subset, seed, NUM_IMAGES)
    classes = grid_classes(indices, FACTOR_SIZES)
    path = Path(path)
    with atomic_output(path) as tmp:
        with h5py.File(tmp, "w") as f:
            images = f.create_dataset(
                "images", shape=(len(indices), size, size, 3), dtype=np.uint8,
                chunks=(min(_CHUNK_IMAGES, len(indices)), size, size, 3), compression="gzip",
                compression_opts=1,
            )
            f.create_dataset("labels", data=classes_to_values(classes, FACTOR_VALUES).astype(np.float64))
            for start in range(0, len(indices), _WRITE_BLOCK):
                block = classes[start:start + _WRITE_BLOCK]
                images[start:start + len(block)] = render_shapes3d(block, size)
    return path


def _dataset(f: h5py.File, key: str, path: Path) -> h5py.Dataset:
    node = f.get(key)
    if not isinstance(node, h5py.Dataset):
        present = ", ".join(sorted(f.keys())) or "none"
        what = "is not a dataset" if node is not None else "is missing"
        raise UserError(f"{path}: HDF5 key '{key}' {what} (keys present: {present}); "
                        "expected the 3dshapes.h5 layout with 'images' and 'labels'")
    return node


def _check_layout(images: h5py.Dataset, labels: h5py.Dataset, path: Path) -> None:
    if images.dtype != np.uint8:
        raise UserError(f"{path}: 'images' has dtype {images.dtype}, expected uint8")
    if images.ndim != 4 or images.shape[3] != 3 or images.shape[0] == 0:
        raise UserError(f"{path}: 'images' has shape {images.shape}, expected (N, H, W, 3) with N > 0")
    if not np.issubdtype(labels.dtype, np.floating):
        raise UserError(f"{path}: 'labels' has dtype {labels.dtype}, expected float64 factor values")
    if labels.shape != (images.shape[0], len(FACTOR_SIZES)):
        raise UserError(f"{path}: 'labels' has shape {labels.shape}, expected ({images.shape[0]}, "
                        f"{len(FACTOR_SIZES)}) to match 'images'")


def labels_to_classes(labels: np.ndarray, source: str = "labels") -> np.ndarray:
    """Map (N, 6) factor values to class indices by matching the known values (rounded to 5 decimals)."""
    labels = np.asarray(labels, dtype=np.float64)
    classes = np.empty(labels.shape, dtype=np.int64)
    for k, (name, values) in enumerate(zip(FACTOR_NAMES, FACTOR_VALUES, strict=True)):
        column = labels[:, k]
        if np.isnan(column).any():
            row = int(np.flatnonzero(np.isnan(column))[0])
            raise UserError(f"{source}: factor '{name}' is NaN (first at row {row})")
        grid, rounded = np.round(values, 5), np.round(column, 5)
        idx = np.clip(np.searchsorted(grid, rounded), 0, len(grid) - 1)
        off = grid[idx] != rounded
        if off.any():
            row = int(np.flatnonzero(off)[0])
            raise UserError(f"{source}: factor '{name}' has value {float(column[row])!r} at row {row}, not one of "
                            f"the {len(grid)} known values {np.round(values, 4).tolist()}")
        classes[:, k] = idx
    return classes


def read_shapes3d_h5(path: str | os.PathLike, image_size: int | None = None) -> GroundTruthData:
    """Read ``3dshapes.h5`` (official or look-alike) fully into memory.

    ``image_size``, if given, must match the file (checked before the images are read).
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"3D Shapes file not found: {path}" + (" (it is a folder)" if path.is_dir() else ""))
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise UserError(f"{path}: cannot open as HDF5 (not an HDF5 file, or truncated): {one_line(exc)}") from exc
    with f:
        images_ds, labels_ds = _dataset(f, "images", path), _dataset(f, "labels", path)
        _check_layout(images_ds, labels_ds, path)
        if image_size is not None and images_ds.shape[1:3] != (image_size, image_size):
            raise UserError(f"{path}: holds {images_ds.shape[1]}x{images_ds.shape[2]} images, but "
                            f"image_size={image_size} was asked for")
        try:
            labels = labels_ds[()]
            factors = labels_to_classes(labels, source=str(path))
            # One sequential read into a preallocated array: per-index reads of a chunked,
            # compressed file are orders of magnitude slower.
            images = np.empty(images_ds.shape, dtype=np.uint8)
            images_ds.read_direct(images)
        except OSError as exc:
            raise UserError(f"{path}: reading failed (file truncated or corrupt?): {one_line(exc)}") from exc
    return GroundTruthData(
        name="shapes3d",
        images=images,
        factors=factors,
        factor_names=list(FACTOR_NAMES),
        factor_sizes=list(FACTOR_SIZES),
        factor_values=[v.copy() for v in FACTOR_VALUES],
    )


def load_shapes3d(path: str | os.PathLike | None = None, image_size: int | None = 64,
                  cache_dir: str | os.PathLike | None = None) -> GroundTruthData:
    """The official file at ``path``, or (path None) the procedural look-alike, rendered once into a cache.

    With a path, ``image_size=None`` accepts the file's own size. Cache folder: ``cache_dir``, else
    ``$LATENTQUANT_CACHE``, else ``~/.cache/latentquant``.
    """
    if path is not None:
        return read_shapes3d_h5(path, image_size=None if image_size is None else check_image_size(image_size, SHAPES3D))
    size = check_image_size(image_size, SHAPES3D)
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    file = cache / f"shapes3d-lookalike-{size}px-v{_LOOKALIKE_VERSION}.h5"
    ensure_lookalike(file, f"rendering the Shapes3D look-alike ({NUM_IMAGES:,} images, {size}x{size})",
                     lambda target: write_shapes3d_h5(target, image_size=size))
    return read_shapes3d_h5(file, image_size=size)
