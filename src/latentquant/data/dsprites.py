"""dSprites (Matthey et al. 2017): read the official ``.npz`` or ``.hdf5`` file, or write and read a look-alike.

Official layout: ``imgs`` uint8 (N, 64, 64) holding 0/1, ``latents_classes`` int64 (N, 6) and
``latents_values`` float64 (N, 6) over (color, shape, scale, orientation, posX, posY), rows in row-major
grid order with posY fastest. The HDF5 variant stores the same arrays as ``imgs``, ``latents/classes`` and
``latents/values``. The npz also holds a pickled ``metadata`` dict, which is never loaded: unpickling a
file can run code, and everything it says is fixed below.
"""

from __future__ import annotations

import os
import zipfile
import zlib
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
    grid_indices,
    one_line,
    subset_indices,
)
from .base import GroundTruthData
from .catalog import DSPRITES

# The file's grid is DSPRITES's with a constant colour factor in front, which the loader drops, as
# disentanglement_lib's dsprites_full does.
FILE_FACTOR_NAMES = ["color", *DSPRITES.factor_names]
FILE_FACTOR_SIZES = (1, *DSPRITES.factor_sizes)
FILE_FACTOR_VALUES = [np.array([1.0]), *DSPRITES.factor_values]
FACTOR_NAMES = FILE_FACTOR_NAMES[1:]
FACTOR_SIZES = FILE_FACTOR_SIZES[1:]
FACTOR_VALUES = FILE_FACTOR_VALUES[1:]
SHAPE_NAMES = ["square", "ellipse", "heart"]
NUM_IMAGES = int(np.prod(FILE_FACTOR_SIZES))
IMAGE_SIZE = DSPRITES.native_size
OFFICIAL_NAME = "dsprites_ndarray_co1sh3sc6or40x32y32_64x64"

_LOOKALIKE_VERSION = 1  # bump when the renderer changes, so stale caches are not reused
_WRITE_BLOCK = 8192  # images rendered and written per step: bounds memory
_VALUE_TOL = 1e-6
_NPZ_KEYS = {"imgs": "imgs", "classes": "latents_classes", "values": "latents_values"}
_H5_KEYS = {"imgs": "imgs", "classes": "latents/classes", "values": "latents/values"}
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


def _write_member(zf: zipfile.ZipFile, key: str, array: np.ndarray) -> None:
    with zf.open(f"{key}.npy", "w", force_zip64=True) as fh:
        np.lib.format.write_array(fh, array, allow_pickle=False)


def write_dsprites_npz(path: str | os.PathLike, subset: int | None = None, seed: int = 0) -> Path:
    """Render the look-alike and write it in the official npz layout (without the ``metadata`` member).

    ``subset``: number of images, drawn without replacement (seeded) and kept in grid order; None writes the
    whole 737,280-image grid. Images are streamed into the archive in blocks, so memory stays small, and the
    file appears atomically: a killed run leaves no file.
    """
    from .lookalike.dsprites import render_dsprites  # reading files must not need the renderer

    indices = subset_indices(subset, seed, NUM_IMAGES)
    classes = grid_classes(indices, FILE_FACTOR_SIZES)
    path = Path(path)
    with atomic_output(path) as tmp:
        # Deflate level 1: binary sprites compress ~100x even at the fastest level.
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
            with zf.open("imgs.npy", "w", force_zip64=True) as fh:
                header = np.lib.format.header_data_from_array_1_0(np.empty((0, IMAGE_SIZE, IMAGE_SIZE), np.uint8))
                header["shape"] = (len(indices), IMAGE_SIZE, IMAGE_SIZE)
                np.lib.format.write_array_header_1_0(fh, header)
                for start in range(0, len(indices), _WRITE_BLOCK):
                    fh.write(render_dsprites(classes[start:start + _WRITE_BLOCK, 1:]).tobytes())
            _write_member(zf, "latents_classes", classes)
            _write_member(zf, "latents_values", classes_to_values(classes, FILE_FACTOR_VALUES))
    return path


# --- reading -------------------------------------------------------------------------------------------


def _check_layout(shapes: dict[str, tuple[tuple[int, ...], np.dtype]], names: dict[str, str], path: Path) -> int:
    """Check shapes and dtypes (from headers, before any bulk read); return N."""
    (ishape, idtype), (cshape, cdtype), (vshape, vdtype) = (shapes[k] for k in ("imgs", "classes", "values"))
    if idtype != np.uint8:
        raise UserError(f"{path}: '{names['imgs']}' has dtype {idtype}, expected uint8")
    if len(ishape) != 3 or ishape[1:] != (IMAGE_SIZE, IMAGE_SIZE) or ishape[0] == 0:
        raise UserError(f"{path}: '{names['imgs']}' has shape {ishape}, expected (N, 64, 64) with N > 0")
    n = ishape[0]
    if not np.issubdtype(cdtype, np.integer):
        raise UserError(f"{path}: '{names['classes']}' has dtype {cdtype}, expected int64 class indices")
    if not np.issubdtype(vdtype, np.floating):
        raise UserError(f"{path}: '{names['values']}' has dtype {vdtype}, expected float64 factor values")
    for key, shape in (("classes", cshape), ("values", vshape)):
        if shape != (n, len(FILE_FACTOR_SIZES)):
            raise UserError(f"{path}: '{names[key]}' has shape {shape}, expected ({n}, 6) to match "
                            f"'{names['imgs']}'")
    return n


def _check_labels(classes: np.ndarray, values: np.ndarray, names: dict[str, str], path: Path) -> None:
    """Classes on the grid, values equal to their classes' values, and rows placed by the row-major rule.

    Checked on every row: it is a few vectorised passes over (N, 6), milliseconds even for the full grid.
    """
    for k, (name, size) in enumerate(zip(FILE_FACTOR_NAMES, FILE_FACTOR_SIZES, strict=True)):
        off = (classes[:, k] < 0) | (classes[:, k] >= size)
        if off.any():
            row = int(np.flatnonzero(off)[0])
            raise UserError(f"{path}: '{names['classes']}' factor '{name}' has class {int(classes[row, k])} at "
                            f"row {row}, outside 0..{size - 1}")
    expected = classes_to_values(classes, FILE_FACTOR_VALUES)
    bad = ~np.isclose(values, expected, rtol=0.0, atol=_VALUE_TOL)  # NaN counts as bad
    if bad.any():
        row, k = (int(i) for i in np.argwhere(bad)[0])
        raise UserError(f"{path}: '{names['values']}' factor '{FILE_FACTOR_NAMES[k]}' has value "
                        f"{float(values[row, k])!r} at row {row}, but its class {int(classes[row, k])} means "
                        f"{float(expected[row, k])!r}")
    flat = grid_indices(classes, FILE_FACTOR_SIZES)
    if len(flat) == NUM_IMAGES:
        wrong = flat != np.arange(NUM_IMAGES)
        if wrong.any():
            row = int(np.flatnonzero(wrong)[0])
            raise UserError(f"{path}: row {row} holds grid point {int(flat[row])}; the full dSprites file is in "
                            "row-major order (posY fastest), so row i must hold grid point i")
    else:
        order = np.sort(flat)
        dup = order[1:] == order[:-1]
        if dup.any():
            point = int(order[1:][dup][0])
            rows = np.flatnonzero(flat == point)[:2].tolist()
            raise UserError(f"{path}: rows {rows[0]} and {rows[1]} both hold grid point {point} "
                            f"(classes {classes[rows[0]].tolist()}); each combination may appear once")


def _npz_member(zf: zipfile.ZipFile, key: str, path: Path) -> zipfile.ZipInfo:
    try:
        return zf.getinfo(f"{key}.npy")
    except KeyError:
        present = ", ".join(sorted(n.removesuffix(".npy") for n in zf.namelist())) or "none"
        raise UserError(f"{path}: npz key '{key}' is missing (keys present: {present}); expected the dSprites "
                        "layout with 'imgs', 'latents_classes' and 'latents_values'") from None


def _npz_header(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> tuple[tuple[int, ...], np.dtype]:
    with zf.open(info) as fh:
        version = np.lib.format.read_magic(fh)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = read_header(fh)
    return tuple(shape), dtype


def _npz_read(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> np.ndarray:
    with zf.open(info) as fh:
        return np.lib.format.read_array(fh, allow_pickle=False)


def _read_npz(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise UserError(f"{path}: cannot open as npz (truncated or not a zip archive): {one_line(exc)}") from exc
    with zf:
        infos = {k: _npz_member(zf, key, path) for k, key in _NPZ_KEYS.items()}
        try:
            shapes = {k: _npz_header(zf, info) for k, info in infos.items()}
            _check_layout(shapes, _NPZ_KEYS, path)
            classes = _npz_read(zf, infos["classes"])
            values = _npz_read(zf, infos["values"])
            _check_labels(classes, values, _NPZ_KEYS, path)
            imgs = _npz_read(zf, infos["imgs"])  # one sequential decompression into one array
        except UserError:
            raise  # a UserError is a ValueError, but it already names what is wrong: not "truncated?"
        except (zipfile.BadZipFile, EOFError, ValueError, OSError, zlib.error) as exc:
            raise UserError(f"{path}: reading failed (file truncated or corrupt?): {one_line(exc)}") from exc
    return imgs, classes, values


def _h5_dataset_names(f: h5py.File) -> list[str]:
    names: list[str] = []
    f.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None)
    return names


def _read_hdf5(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise UserError(f"{path}: cannot open as HDF5 (not an HDF5 file, or truncated): {one_line(exc)}") from exc
    with f:
        nodes = {}
        for k, key in _H5_KEYS.items():
            try:
                node = f.get(key)
            except (KeyError, OSError, TypeError):
                node = None
            if not isinstance(node, h5py.Dataset):
                present = _h5_dataset_names(f)
                what = "is not a dataset" if node is not None else "is missing"
                raise UserError(f"{path}: HDF5 key '{key}' {what} (keys present: {', '.join(present) or 'none'}); "
                                "expected the dSprites layout with 'imgs', 'latents/classes' and 'latents/values'")
            nodes[k] = node
        _check_layout({k: (node.shape, node.dtype) for k, node in nodes.items()}, _H5_KEYS, path)
        try:
            classes, values = nodes["classes"][()], nodes["values"][()]
            _check_labels(classes, values, _H5_KEYS, path)
            imgs = np.empty(nodes["imgs"].shape, dtype=np.uint8)
            nodes["imgs"].read_direct(imgs)  # one sequential read: per-index reads of chunks are far slower
        except OSError as exc:
            raise UserError(f"{path}: reading failed (file truncated or corrupt?): {one_line(exc)}") from exc
    return imgs, classes, values


def read_dsprites(path: str | os.PathLike) -> GroundTruthData:
    """Read an official-layout dSprites ``.npz`` or ``.hdf5`` file fully into memory.

    The format is told by the file's first bytes (zip or HDF5 signature), not its name. Images come back as
    (N, 64, 64, 1) uint8 scaled from the file's 0/1 to 0/255, like every other dataset, so dividing by 255
    gives the original 0/1.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"dSprites file not found: {path}" + (" (it is a folder)" if path.is_dir() else ""))
    with open(path, "rb") as fh:
        magic = fh.read(8)
    if magic.startswith(_ZIP_MAGIC):
        imgs, classes, values = _read_npz(path)
        names = _NPZ_KEYS
    elif magic.startswith(_HDF5_MAGIC):
        imgs, classes, values = _read_hdf5(path)
        names = _H5_KEYS
    else:
        raise UserError(f"{path}: neither an npz (zip) nor an HDF5 file (first bytes {magic!r}); expected "
                        f"{OFFICIAL_NAME}.npz or .hdf5")
    top = int(imgs.max())
    if top > 1:
        raise UserError(f"{path}: '{names['imgs']}' holds values up to {top}, expected the official 0/1 images")
    imgs *= 255  # in place: the full set is 3 GB
    return GroundTruthData(
        name="dsprites",
        images=imgs[..., None],
        factors=np.ascontiguousarray(classes[:, 1:], dtype=np.int64),
        factor_names=list(FACTOR_NAMES),
        factor_sizes=list(FACTOR_SIZES),
        factor_values=[v.copy() for v in FACTOR_VALUES],
    )


def load_dsprites(path: str | os.PathLike | None = None, image_size: int = 64,
                  cache_dir: str | os.PathLike | None = None) -> GroundTruthData:
    """The official file at ``path``, or (path None) the procedural look-alike, rendered once into a cache.

    Cache folder: ``cache_dir``, else ``$LATENTQUANT_CACHE``, else ``~/.cache/latentquant``.
    """
    check_image_size(image_size, DSPRITES)
    if path is not None:
        return read_dsprites(path)
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    file = cache / f"dsprites-lookalike-v{_LOOKALIKE_VERSION}.npz"
    ensure_lookalike(file, f"rendering the dSprites look-alike ({NUM_IMAGES:,} images)", write_dsprites_npz)
    return read_dsprites(file)
