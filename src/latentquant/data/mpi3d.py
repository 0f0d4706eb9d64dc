"""MPI3D (Gondal et al. 2019): read the official ``.npz`` files, or write and read a procedural look-alike.

Official layout: one zip member ``images.npy``, uint8 (N, 64, 64, 3), and no labels: the factor classes
are the row-major (C-order) enumeration of the factor grid, vertical_axis fastest. N tells the grid:
1,036,800 rows is the current 6x6 toy / realistic / real; 460,800 rows is either real-complex or one of the
challenge-era toy / realistic files, told apart by the file name.

The 6x6 file is 12.7 GB decoded, so the reader memory-maps the images straight out of the zip when the
member is stored, and otherwise extracts it once to a cached ``.npy`` that is then memory-mapped.

latentquant extension: a look-alike written with ``subset`` holds only some grid rows, so it carries a
second member ``indices`` (int64, sorted grid indices of its rows). Official files never have it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import struct
import sys
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UserError
from ._common import (
    atomic_output,
    check_image_size,
    default_cache_dir,
    ensure_lookalike,
    grid_classes,
    one_line,
    subset_indices,
)
from .base import GroundTruthData
from .catalog import MPI3D

FACTOR_NAMES = list(MPI3D.factor_names)

# Grid sizes per layout; module-level so tests can shrink them (a real-size test file would be GBs). The 4x4
# layout has 4 object colours and 4 shapes, the rest of MPI3D's 6x6 grid.
GRIDS: dict[str, tuple[int, ...]] = {
    "6x6": MPI3D.factor_sizes,
    "4x4": (4, 4, *MPI3D.factor_sizes[2:]),
}

_COMMON_NAMES = [["small", "large"], ["top", "center", "bottom"], ["purple", "sea green", "salmon"]]
_FULL_COLORS = ["white", "green", "red", "blue", "brown", "olive"]
_FULL_SHAPES = ["cone", "cube", "cylinder", "hexagonal", "pyramid", "sphere"]


@dataclass(frozen=True)
class Variant:
    name: str
    grid: str
    colors: tuple[str, ...]
    shapes: tuple[str, ...]


VARIANTS: dict[str, Variant] = {
    "toy": Variant("toy", "6x6", tuple(_FULL_COLORS), tuple(_FULL_SHAPES)),
    "realistic": Variant("realistic", "6x6", tuple(_FULL_COLORS), tuple(_FULL_SHAPES)),
    "real": Variant("real", "6x6", tuple(_FULL_COLORS), tuple(_FULL_SHAPES)),
    "real_complex": Variant("real_complex", "4x4", ("yellow", "green", "olive", "red"),
                            ("coffee-cup", "tennis-ball", "croissant", "beer-cup")),
    # The 2019 challenge files: the full set without white/olive and cylinder/pyramid.
    "challenge_toy": Variant("challenge_toy", "4x4", ("green", "red", "blue", "brown"),
                             ("cone", "cube", "hexagonal", "sphere")),
    "challenge_realistic": Variant("challenge_realistic", "4x4", ("green", "red", "blue", "brown"),
                                   ("cone", "cube", "hexagonal", "sphere")),
}

LOOKALIKE_SUBSET = 100_000  # default rows of the look-alike: the full grid is 12.7 GB and ~20 min to render
_LOOKALIKE_VERSION = 1  # bump when the renderer changes, so stale caches are not reused
_WRITE_BLOCK = 512  # images rendered and written per step: bounds memory (~0.5 GB peak) whatever the subset
_COPY_BLOCK = 64 << 20


def grid_sizes(variant: str) -> tuple[int, ...]:
    return GRIDS[VARIANTS[variant].grid]


def value_names(variant: str) -> list[list[str] | None]:
    """Human-readable name of each class, per factor (None where the classes are plain positions)."""
    v = VARIANTS[variant]
    return [list(v.colors), list(v.shapes), *[list(n) for n in _COMMON_NAMES], None, None]


def detect_variant(n: int, file_name: str, has_indices: bool = False) -> str:
    """The variant for a file with ``n`` rows named ``file_name`` (see the module docstring)."""
    name = file_name.lower()
    four = "complex" in name or "complicated" in name or "without_heldout" in name
    if has_indices:
        # A latentquant subset file: N is the subset size, so only the name can tell the grid.
        n = int(np.prod(GRIDS["4x4" if four else "6x6"]))
    if n == int(np.prod(GRIDS["6x6"])):
        if "realistic" in name:
            return "realistic"
        return "real" if "real" in name else "toy"
    if n == int(np.prod(GRIDS["4x4"])):
        if "complex" in name or "complicated" in name:
            return "real_complex"
        return "challenge_realistic" if "realistic" in name else "challenge_toy"
    raise UserError(f"{file_name}: {n:,} images match no MPI3D variant (expected "
                    f"{int(np.prod(GRIDS['6x6'])):,} for toy/realistic/real or "
                    f"{int(np.prod(GRIDS['4x4'])):,} for real-complex or the challenge-era files)")


# --- reading the zip ------------------------------------------------------------------------------------


@dataclass
class _Member:
    info: zipfile.ZipInfo
    data_offset: int  # file offset of the member's first byte (meaningful when stored)


def _open_zip(path: Path) -> tuple[zipfile.ZipFile, dict[str, zipfile.ZipInfo]]:
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise UserError(f"{path}: cannot open as .npz (not a zip file, or truncated): {one_line(exc)}") from exc
    return zf, {info.filename: info for info in zf.infolist()}


def _member_offset(path: Path, info: zipfile.ZipInfo) -> int:
    # The central directory's sizes are authoritative, but the local header's name and extra-field
    # lengths (which can differ from the central copy) decide where the data starts.
    with open(path, "rb") as f:
        f.seek(info.header_offset)
        header = f.read(30)
    if len(header) < 30 or header[:4] != b"PK\x03\x04":
        raise UserError(f"{path}: corrupt zip local header for '{info.filename}' (file truncated?)")
    name_len, extra_len = struct.unpack("<HH", header[26:30])
    return info.header_offset + 30 + name_len + extra_len


def _read_npy_header(stream, path: Path, key: str) -> tuple[tuple[int, ...], bool, np.dtype]:
    try:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            return np.lib.format.read_array_header_1_0(stream)
        return np.lib.format.read_array_header_2_0(stream)
    except (ValueError, OSError, EOFError) as exc:
        raise UserError(f"{path}: member '{key}' is not a valid .npy array: {one_line(exc)}") from exc


def _check_images(shape: tuple[int, ...], dtype: np.dtype, fortran: bool, path: Path) -> None:
    if dtype != np.uint8:
        raise UserError(f"{path}: 'images' has dtype {dtype}, expected uint8")
    if len(shape) != 4 or shape[3] != 3 or shape[0] == 0 or shape[1] != shape[2]:
        raise UserError(f"{path}: 'images' has shape {shape}, expected (N, 64, 64, 3) with N > 0")
    if fortran:
        raise UserError(f"{path}: 'images' is stored in Fortran order; expected C order as np.savez writes it")


def _extracted_path(path: Path, info: zipfile.ZipInfo, cache_dir: Path | None) -> Path:
    """Where the member is extracted: named by the source path and its identity, so a changed file is re-extracted.

    The identity is the file's (device, inode, size, mtime_ns, ctime_ns) and the member's CRC and size: any
    write changes the ctime, which tools that restore an mtime (``cp -p``, ``rsync -t``) cannot set back.
    """
    cache = cache_dir if cache_dir is not None else default_cache_dir()
    st = path.stat()
    identity = hashlib.sha256(f"{st.st_dev}|{st.st_ino}|{st.st_size}|{st.st_mtime_ns}|{st.st_ctime_ns}|"
                              f"{info.CRC}|{info.file_size}".encode()).hexdigest()[:16]
    return cache / "mpi3d-extracted" / f"{_extracted_prefix(path)}{identity}.npy"


def _extracted_prefix(path: Path) -> str:
    return f"{path.stem}-{hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:8]}-"


def _open_extracted(target: Path, shape: tuple[int, ...]) -> np.ndarray | None:
    """The extracted images, or None unless ``target`` is exactly a complete extraction of that shape."""
    try:
        images = np.load(target, mmap_mode="r")
        complete = (isinstance(images, np.memmap) and images.dtype == np.uint8 and images.shape == tuple(shape)
                    and images.offset + images.nbytes == target.stat().st_size)
    except (OSError, ValueError, EOFError):
        return None
    return images if complete else None


def _map_images(path: Path, zf: zipfile.ZipFile, info: zipfile.ZipInfo, cache_dir: Path | None) -> np.ndarray:
    file_size = path.stat().st_size
    if info.compress_type == zipfile.ZIP_STORED:
        start = _member_offset(path, info)
        with open(path, "rb") as f:
            f.seek(start)
            shape, fortran, dtype = _read_npy_header(f, path, "images")
            offset = f.tell()
        _check_images(shape, dtype, fortran, path)
        end = offset + int(np.prod(shape))
        if end > file_size or end > start + info.file_size:
            raise UserError(f"{path}: 'images' needs {end:,} bytes but the file or member is shorter "
                            f"({file_size:,} bytes): file truncated?")
        return np.memmap(path, dtype=np.uint8, mode="r", offset=offset, shape=shape)
    # Deflated: stream it once into a cached .npy (never the whole array in memory), then map that.
    target = _extracted_path(path, info, cache_dir)
    try:
        with zf.open(info) as src:
            shape, fortran, dtype = _read_npy_header(src, path, "images")
        _check_images(shape, dtype, fortran, path)
        images = _open_extracted(target, shape)  # a missing, truncated or foreign file is re-extracted
        if images is not None:
            return images
        print(f"{path}: 'images' is compressed; extracting it once to {target}", file=sys.stderr, flush=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        for old in target.parent.glob(f"{_extracted_prefix(path)}*.npy"):  # earlier versions of this file
            with contextlib.suppress(OSError):
                old.unlink()
        with atomic_output(target) as tmp, zf.open(info) as src:
            _read_npy_header(src, path, "images")
            out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=shape)
            flat = out.reshape(-1)
            pos = 0
            while pos < flat.size:
                chunk = src.read(min(_COPY_BLOCK, flat.size - pos))
                if not chunk:
                    raise UserError(f"{path}: 'images' ends after {pos:,} of {flat.size:,} bytes: file truncated?")
                flat[pos:pos + len(chunk)] = np.frombuffer(chunk, np.uint8)
                pos += len(chunk)
            # Reading on to the member's end is what makes zipfile compare the CRC: damaged bytes fail here.
            if src.read(1):
                raise UserError(f"{path}: 'images' holds more bytes than its shape {shape} needs")
            out.flush()
            del out, flat
            images = np.load(tmp, mmap_mode="r")  # mapped before the rename, like the NVlabs cache
    except (zipfile.BadZipFile, EOFError, OSError, zlib.error) as exc:
        raise UserError(f"{path}: extracting 'images' failed (file truncated or corrupt, or cache not "
                        f"writable): {one_line(exc)}") from exc
    return images


def _read_indices(path: Path, zf: zipfile.ZipFile, info: zipfile.ZipInfo, n: int, total: int) -> np.ndarray:
    try:
        with zf.open(info) as f:
            indices = np.lib.format.read_array(f)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise UserError(f"{path}: cannot read 'indices': {one_line(exc)}") from exc
    if indices.shape != (n,) or not np.issubdtype(indices.dtype, np.integer):
        raise UserError(f"{path}: 'indices' has shape {indices.shape} and dtype {indices.dtype}, "
                        f"expected ({n},) integers, one grid index per image")
    if n and (indices.min() < 0 or indices.max() >= total or np.any(np.diff(indices) <= 0)):
        raise UserError(f"{path}: 'indices' must be strictly increasing grid indices in 0..{total - 1}")
    return indices.astype(np.int64)


def read_mpi3d_npz(path: str | os.PathLike, variant: str | None = None, image_size: int | None = None,
                   cache_dir: str | os.PathLike | None = None) -> GroundTruthData:
    """Read an MPI3D ``.npz`` (official or look-alike); images come back memory-mapped, read-only."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"MPI3D file not found: {path}" + (" (it is a folder)" if path.is_dir() else ""))
    if variant is not None and variant not in VARIANTS:
        raise UserError(f"unknown MPI3D variant {variant!r}; known: {', '.join(VARIANTS)}")
    zf, members = _open_zip(path)
    with zf:
        if "images.npy" not in members:
            present = ", ".join(sorted(k.removesuffix(".npy") for k in members)) or "none"
            raise UserError(f"{path}: key 'images' is missing (keys present: {present}); "
                            "expected the official MPI3D layout with a single key 'images'")
        images = _map_images(path, zf, members["images.npy"], Path(cache_dir) if cache_dir is not None else None)
        n = images.shape[0]
        has_indices = "indices.npy" in members
        chosen = variant if variant is not None else detect_variant(n, path.name, has_indices)
        sizes = grid_sizes(chosen)
        total = int(np.prod(sizes))
        if has_indices:
            indices = _read_indices(path, zf, members["indices.npy"], n, total)
        else:
            if n != total:
                raise UserError(f"{path}: {n:,} images, but variant '{chosen}' has {total:,} "
                                f"(grid {'x'.join(map(str, sizes))})")
            indices = np.arange(n, dtype=np.int64)
    if image_size is not None and images.shape[1] != image_size:
        raise UserError(f"{path}: holds {images.shape[1]}x{images.shape[2]} images, but "
                        f"image_size={image_size} was asked for")
    factors = grid_classes(indices, sizes)
    return GroundTruthData(
        name=f"mpi3d_{chosen}",
        images=images,
        factors=factors,
        factor_names=list(FACTOR_NAMES),
        factor_sizes=list(sizes),
        factor_values=[np.arange(s, dtype=np.float64) for s in sizes],
    )


# --- writing the look-alike ---------------------------------------------------------------------------


def write_mpi3d_npz(path: str | os.PathLike, subset: int | None = None, seed: int = 0,
                    image_size: int = 64) -> Path:
    """Render the MPI3D-toy look-alike (6x6 grid) and write it in the official ``.npz`` layout.

    ``subset``: number of grid rows, drawn without replacement (seeded) and kept in grid order, written
    with the ``indices`` extension key; None writes the whole 1,036,800-row grid with ``images`` only.
    The member is stored uncompressed (as ``np.savez`` does) so it can be memory-mapped; the file
    appears atomically, so a killed run leaves no file.
    """
    from .lookalike.mpi3d import render_mpi3d  # reading files must not need the renderer

    size = check_image_size(image_size, MPI3D)
    sizes = GRIDS["6x6"]
    indices = subset_indices(subset, seed, int(np.prod(sizes)))
    path = Path(path)
    with atomic_output(path) as tmp:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
            with zf.open("images.npy", "w", force_zip64=True) as f:
                header = {"descr": "|u1", "fortran_order": False, "shape": (len(indices), size, size, 3)}
                np.lib.format.write_array_header_2_0(f, header)
                for start in range(0, len(indices), _WRITE_BLOCK):
                    block = indices[start:start + _WRITE_BLOCK]
                    f.write(render_mpi3d(grid_classes(block, sizes), size).tobytes())
            if subset is not None:
                with zf.open("indices.npy", "w") as f:
                    np.lib.format.write_array(f, indices)
    return path


def load_mpi3d(path: str | os.PathLike | None = None, image_size: int | None = 64,
               cache_dir: str | os.PathLike | None = None, variant: str | None = None) -> GroundTruthData:
    """The official file at ``path``, or (path None) the MPI3D-toy look-alike, rendered once into a cache.

    With a path, ``image_size`` must equal the file's image size, or be None to take the file's own size.
    ``variant`` overrides the detection from N and the file name. The look-alike is a seeded subset of
    ``LOOKALIKE_SUBSET`` grid rows (``write_mpi3d_npz(path)`` writes the full grid). Cache folder:
    ``cache_dir``, else ``$LATENTQUANT_CACHE``, else ``~/.cache/latentquant``.
    """
    if path is not None:
        # None: whatever size the file stores (`data make mpi3d --image-size 32` writes 32x32 files).
        size = None if image_size is None else check_image_size(image_size, MPI3D)
        return read_mpi3d_npz(path, variant=variant, image_size=size, cache_dir=cache_dir)
    size = check_image_size(image_size, MPI3D)
    if variant not in (None, "toy"):
        raise UserError(f"the look-alike is MPI3D-toy only; variant={variant!r} needs the official file (path=...)")
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    suffix = "" if size == 64 else f"-{size}px"
    file = cache / f"mpi3d-toy-lookalike{suffix}-v{_LOOKALIKE_VERSION}.npz"
    total = int(np.prod(GRIDS["6x6"]))
    ensure_lookalike(file, f"rendering the MPI3D-toy look-alike ({LOOKALIKE_SUBSET:,} of {total:,} grid images, "
                     f"{size}x{size})",
                     lambda target: write_mpi3d_npz(target, subset=min(LOOKALIKE_SUBSET, total), seed=0,
                                                    image_size=size))
    return read_mpi3d_npz(file, variant="toy", image_size=size, cache_dir=cache)
