"""Falcor3D and Isaac3D (NVlabs High-res disentanglement datasets): read and write their shared folder layout.

Layout (official ``*_down128`` zips and the look-alikes alike)::

    root/images/000000.png ...   RGB PNGs (128x128), named by the zero-padded row-major grid index
    root/train-rec.labels        Falcor3D: a .npy file despite its name, (N, 7) float64
    root/labels.npy              Isaac3D: (N, 9) float64

Labels are normalised factor values ``linspace(0, 1, m)``; class = ``rint(value * (m - 1))``. The PNGs are
decoded and resized (bicubic, antialiased) once into a memory-mappable ``.npy`` cache, because decoding
hundreds of thousands of PNGs on every load would take minutes.

The cache is used only while the sources are provably the ones it was decoded from. Its file name carries an
identity digest (:func:`_source_identity`) of: the sha256 of the labels file's bytes (so the row -> PNG
pairing is fixed), the PNG grid indices in row order, and every PNG's (device, inode, size, mtime_ns,
ctime_ns). Hashing every PNG would cost as much I/O as decoding them, so the PNGs are identified by stat: any
write to a file changes its ctime, which no tool can set back (``touch -d``, ``cp -p`` and ``rsync -t``
restore mtime only), and a swapped or re-pointed file changes the inode. A touch with unchanged content
therefore rebuilds the cache, which costs time but never gives wrong data.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import multiprocessing
import os
import re
import shutil
import stat
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import UserError
from ._common import (
    atomic_output,
    check_image_size,
    default_cache_dir,
    grid_classes,
    grid_indices,
    one_line,
    subset_indices,
)
from .base import GroundTruthData
from .catalog import FALCOR3D, ISAAC3D, DatasetSpec

LABEL_FILES = (FALCOR3D.labels_file, ISAAC3D.labels_file)  # either is accepted in either folder
LOOKALIKE_SUBSET = 20_000  # the full grids (233,280 / 737,280 PNGs) take too long to write by default

_LOOKALIKE_VERSION = 1  # bump when a renderer changes, so stale look-alike folders are not reused
_GRID_TOLERANCE = 1e-4  # in class units: float64 linspace values are far closer than this
_PNG_NAME = re.compile(r"^(\d+)\.png$")
_WORKERS = 2
_CHUNK = 256  # PNGs per worker task: big enough to amortise pickling, small enough for steady progress
_POOL_MIN = 1024  # below this, a process pool costs more than it saves
_WRITE_BLOCK = 128  # look-alike images rendered and saved per step: bounds the renderer's scratch memory


def _png_indices(images_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """Grid indices of the ``NNNNNN.png`` files in ``images_dir`` (other files are ignored), sorted, and
    each one's (st_dev, st_ino, st_size, st_mtime_ns, st_ctime_ns) for the cache identity.

    A symlink counts as the file it points to. Anything but a regular file is refused here, before a
    decoder could block on a FIFO or trip over a directory.
    """
    found: list[int] = []
    stats: list[tuple[int, int, int, int, int]] = []
    try:
        with os.scandir(images_dir) as entries:
            for entry in entries:
                match = _PNG_NAME.match(entry.name)
                if not match:
                    continue
                try:
                    st = entry.stat()
                except OSError as exc:  # a dangling symlink, or no permission on its target
                    raise UserError(f"{images_dir / entry.name}: cannot stat the PNG: {one_line(exc)}") from exc
                if not stat.S_ISREG(st.st_mode):
                    raise UserError(f"{images_dir / entry.name}: not a regular file")
                found.append(int(match.group(1)))
                stats.append((st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns))
    except OSError as exc:
        raise UserError(f"{images_dir}: cannot list the PNGs: {one_line(exc)}") from exc
    indices = np.asarray(found, dtype=np.int64)
    order = np.argsort(indices, kind="stable")
    table = np.asarray(stats, dtype=np.int64).reshape(-1, 5)
    return indices[order], table[order]


def png_name(index: int) -> str:
    return f"{index:06d}.png"


def labels_to_classes(labels: np.ndarray, spec: DatasetSpec, source: str) -> np.ndarray:
    """(N, K) normalised values -> class indices, refusing anything off the ``linspace(0, 1, m)`` grid."""
    classes = np.empty(labels.shape, dtype=np.int64)
    for k, (name, m) in enumerate(zip(spec.factor_names, spec.factor_sizes, strict=True)):
        scaled = labels[:, k].astype(np.float64) * (m - 1)
        rounded = np.rint(scaled)
        bad = ~np.isfinite(scaled) | (np.abs(scaled - rounded) > _GRID_TOLERANCE) | (rounded < 0) | (rounded > m - 1)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise UserError(f"{source}: factor '{name}' has value {float(labels[row, k])!r} at row {row}, not one of "
                            f"the {m} grid values linspace(0, 1, {m}); off-grid labels")
        classes[:, k] = rounded.astype(np.int64)
    return classes


def _read_labels(file: Path, spec: DatasetSpec) -> tuple[np.ndarray, str]:
    """The (N, K) labels and the sha256 of the bytes they were parsed from (one read: the two agree)."""
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise UserError(f"{file}: cannot read the labels: {one_line(exc)}") from exc
    try:
        labels = np.load(io.BytesIO(raw), allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise UserError(f"{file}: cannot read the labels as a NumPy .npy file: {one_line(exc)}") from exc
    k = len(spec.factor_sizes)
    if not isinstance(labels, np.ndarray) or labels.ndim != 2 or labels.shape[1] != k or labels.shape[0] == 0:
        shape = getattr(labels, "shape", None)
        raise UserError(f"{file}: labels have shape {shape}, expected (N, {k}) with N > 0 for {spec.title} "
                        f"({', '.join(spec.factor_names)})")
    if not np.issubdtype(labels.dtype, np.floating):
        raise UserError(f"{file}: labels have dtype {labels.dtype}, expected float normalised values in [0, 1]")
    return labels, hashlib.sha256(raw).hexdigest()


def _find_labels(root: Path, spec: DatasetSpec) -> Path | None:
    """The labels file, or None if there is none; a labels name that is not a readable regular file is refused
    (skipping it would silently fall back to factors from the PNG names)."""
    names = (spec.labels_file, *[n for n in LABEL_FILES if n != spec.labels_file])
    for name in names:
        file = root / name
        if file.is_file():
            return file
        if os.path.lexists(file):
            what = "a symlink to nothing" if file.is_symlink() and not file.exists() else "not a regular file"
            raise UserError(f"{file}: labels file is {what}")
    return None


def _decode_chunk(task: tuple[list[str], int, tuple[int, int] | None]) -> tuple[np.ndarray | None, str | None]:
    """Decode and resize PNGs; errors come back as text because exceptions from workers lose their context."""
    paths, size, native = task
    out = np.empty((len(paths), size, size, 3), dtype=np.uint8)
    for i, path in enumerate(paths):
        try:
            with Image.open(path) as img:
                img.load()
                if native is not None and img.size != native:
                    return None, f"{path}: is {img.size[0]}x{img.size[1]}, but the first PNG is {native[0]}x{native[1]}"
                rgb = img if img.mode == "RGB" else img.convert("RGB")
                if rgb.size != (size, size):
                    # Antialiased bicubic over the whole source, the PIL counterpart of
                    # tf.image.resize(..., "bicubic", antialias=True) used by the reference code.
                    rgb = rgb.resize((size, size), Image.BICUBIC, reducing_gap=None)
                out[i] = np.asarray(rgb, dtype=np.uint8)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
            return None, f"{path}: unreadable PNG: {one_line(exc)}"
    return out, None


def _decode_all(paths: list[str], size: int, native: tuple[int, int], target: np.ndarray, what: str) -> None:
    tasks = [(paths[s:s + _CHUNK], size, native) for s in range(0, len(paths), _CHUNK)]
    start = time.perf_counter()
    done, last_report = 0, 0.0

    def consume(results) -> None:
        nonlocal done, last_report
        for images, error in results:
            if error is not None:
                raise UserError(error)
            target[done:done + len(images)] = images
            done += len(images)
            now = time.perf_counter() - start
            if now - last_report > 5 or done == len(paths):
                last_report = now
                print(f"{what}: decoded {done:,}/{len(paths):,} PNGs ({now:.0f} s)", file=sys.stderr, flush=True)

    if len(paths) < _POOL_MIN:
        consume(map(_decode_chunk, tasks))
        return
    with multiprocessing.get_context().Pool(_WORKERS) as pool:
        consume(pool.imap(_decode_chunk, tasks))  # imap keeps order, so rows land where they belong


_CACHE_FORMAT = 2  # bump when the decode or the identity changes, so older caches never match


def _source_identity(spec: DatasetSpec, size: int, labels_digest: str, indices: np.ndarray,
                     png_stats: np.ndarray) -> str:
    """Digest of everything the cached pixels depend on (see the module docstring for why stat suffices)."""
    h = hashlib.sha256(f"{_CACHE_FORMAT}|{spec.name}|{size}|{labels_digest}|".encode())
    h.update(np.ascontiguousarray(indices, dtype="<i8").tobytes())
    h.update(np.ascontiguousarray(png_stats, dtype="<i8").tobytes())
    return h.hexdigest()[:32]


def _cache_prefix(spec: DatasetSpec, root: Path) -> str:
    return f"{spec.name}-{hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:16]}-"


def _cache_file(cache: Path, spec: DatasetSpec, root: Path, n: int, size: int, identity: str) -> Path:
    return cache / f"{_cache_prefix(spec, root)}n{n}-{size}px-{identity}.npy"


def _open_cache(file: Path, n: int, size: int) -> np.ndarray | None:
    """The cache as a read-only memory map, or None if it is missing or not exactly a complete cache.

    Only a finished file is ever renamed to this name; a wrong header, shape or length (truncated, padded,
    overwritten) means something else wrote it, and it is rebuilt rather than trusted.
    """
    try:
        images = np.load(file, mmap_mode="r")
        complete = (isinstance(images, np.memmap) and images.dtype == np.uint8 and images.shape == (n, size, size, 3)
                    and images.offset + images.nbytes == file.stat().st_size)
    except (OSError, ValueError, EOFError):
        return None
    return images if complete else None


def _remove_stale(cache: Path, spec: DatasetSpec, root: Path, size: int, keep: Path) -> None:
    """Delete this folder's caches at this size for other identities: the sources they were decoded from are
    gone for good (a ctime never comes back), and each is as large as the decoded images."""
    for old in cache.glob(f"{_cache_prefix(spec, root)}n*-{size}px-*.npy"):
        if old != keep:
            with contextlib.suppress(OSError):  # a reader's memory map stays valid after the unlink
                old.unlink()


def _resized_images(root: Path, indices: np.ndarray, spec: DatasetSpec, size: int, cache: Path,
                    identity: str) -> np.ndarray:
    """The (N, size, size, 3) uint8 images as a memory map, decoding into the cache unless it matches ``identity``."""
    file = _cache_file(cache, spec, root, len(indices), size, identity)
    images = _open_cache(file, len(indices), size)
    if images is not None:
        return images
    paths = [str(root / "images" / png_name(int(i))) for i in indices]
    try:
        with Image.open(paths[0]) as first:
            native = first.size
    except (OSError, Image.DecompressionBombError) as exc:  # a header declaring billions of pixels, say
        raise UserError(f"{paths[0]}: unreadable PNG: {one_line(exc)}") from exc
    print(f"{spec.title}: decoding {len(paths):,} PNGs from {root} to {size}x{size} once, into {file}",
          file=sys.stderr, flush=True)
    try:
        cache.mkdir(parents=True, exist_ok=True)
        _remove_stale(cache, spec, root, size, keep=file)
        # The name appears only once every PNG is decoded and the data is on disk.
        with atomic_output(file) as tmp:
            target = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(len(paths), size, size, 3))
            try:
                _decode_all(paths, size, native, target, spec.title)
                target.flush()
            finally:
                del target
            # Mapped before the rename, so a concurrent loader's _remove_stale cannot pull it from under us.
            images = np.load(tmp, mmap_mode="r")
    except OSError as exc:
        raise UserError(f"cannot write the resized-image cache {file}: {one_line(exc)} "
                        "(set LATENTQUANT_CACHE or cache_dir to a writable folder)") from exc
    return images


def read_nvlabs_folder(root: str | os.PathLike, spec: DatasetSpec, image_size: int = 64,
                       cache_dir: str | os.PathLike | None = None) -> GroundTruthData:
    """Read a folder in the official layout (``images/`` + labels file); images come back memory-mapped.

    Label rows may be any subset of the grid in any order; row i's image is ``images/<grid index>.png``.
    Without a labels file the factors come from the PNG names (with a warning).
    """
    size = check_image_size(image_size, spec)
    root = Path(root)
    if not root.is_dir():
        what = "is a file, expected the folder holding images/" if root.exists() else "not found"
        raise UserError(f"{spec.title} folder {what}: {root}")
    images_dir = root / "images"
    if os.path.lexists(images_dir) and not images_dir.is_dir():
        raise UserError(f"{images_dir}: not a folder; expected the {spec.title} layout images/000000.png ...")
    labels_file = _find_labels(root, spec)
    if images_dir.is_dir():
        present, png_stats = _png_indices(images_dir)
    else:
        present, png_stats = np.empty(0, np.int64), np.empty((0, 5), np.int64)
    if labels_file is None and len(present) == 0:
        raise UserError(f"{root}: no labels file ({' or '.join(LABEL_FILES)}) and no PNGs in {images_dir}; "
                        f"expected the {spec.title} layout images/000000.png ... plus {spec.labels_file}")
    if labels_file is not None:
        labels, labels_digest = _read_labels(labels_file, spec)
        factors = labels_to_classes(labels, spec, str(labels_file))
        indices = grid_indices(factors, spec.factor_sizes).astype(np.int64)
        unique, counts = np.unique(indices, return_counts=True)
        if (counts > 1).any():
            row = int(np.flatnonzero(indices == unique[np.argmax(counts > 1)])[1])
            raise UserError(f"{labels_file}: row {row} repeats the factor combination of an earlier row; "
                            "each grid point must appear once")
        missing = np.setdiff1d(indices, present, assume_unique=True)
        if len(missing):
            first = int(indices[np.isin(indices, missing)][0])  # first missing in label-row order
            raise UserError(f"{images_dir / png_name(first)}: missing PNG ({len(missing):,} of the {len(indices):,} "
                            f"images the labels name are missing)")
        if len(present) != len(indices):
            extra = np.setdiff1d(present, indices, assume_unique=True)
            raise UserError(f"{root}: {len(present):,} PNGs but {len(indices):,} label rows; PNG names must be the "
                            f"row-major grid indices of the label rows (first unmatched: {png_name(int(extra[0]))})")
    else:
        n_grid = spec.num_images
        if present[-1] >= n_grid:
            raise UserError(f"{images_dir / png_name(int(present[-1]))}: index beyond the {spec.title} grid "
                            f"of {n_grid:,} images")
        warnings.warn(f"{root}: no labels file ({' or '.join(LABEL_FILES)}); factors derived from the PNG "
                      "file-name indices (row-major grid order)", UserWarning, stacklevel=2)
        indices = present
        factors = grid_classes(indices, spec.factor_sizes)
        labels_digest = "none"
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    # `present` is sorted and equals the set of `indices`, so searchsorted finds each row's PNG.
    identity = _source_identity(spec, size, labels_digest, indices, png_stats[np.searchsorted(present, indices)])
    images = _resized_images(root, indices, spec, size, cache, identity)
    return GroundTruthData(
        name=spec.name,
        images=images,
        factors=factors,
        factor_names=list(spec.factor_names),
        factor_sizes=list(spec.factor_sizes),
        factor_values=[v.copy() for v in spec.factor_values],
    )


# --- writing the look-alike ---------------------------------------------------------------------------


def write_folder(spec: DatasetSpec, root: str | os.PathLike, subset: int | None = None, seed: int = 0) -> Path:
    """Write the look-alike in the official layout: ``images/%06d.png`` (128x128) + the labels file.

    ``subset``: number of grid points drawn without replacement (seeded), kept in grid order; None writes
    the whole grid. Everything goes into a temporary folder renamed at the end, so a killed run leaves
    no half-written dataset.
    """
    from .lookalike.nvlabs import RENDERERS  # reading folders must not need the renderer

    root = Path(root)
    if root.exists():
        raise UserError(f"{root} already exists; remove it or choose another folder")
    indices = subset_indices(subset, seed, spec.num_images)
    classes = grid_classes(indices, spec.factor_sizes)
    labels = classes / (np.asarray(spec.factor_sizes, dtype=np.float64) - 1.0)
    render = RENDERERS[spec.name]
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = root.with_name(f".{root.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        (tmp / "images").mkdir(parents=True)
        for s in range(0, len(indices), _WRITE_BLOCK):
            for index, image in zip(indices[s:s + _WRITE_BLOCK], render(classes[s:s + _WRITE_BLOCK]), strict=True):
                # Level 1: the decoded pixels are identical and writing is several times faster.
                Image.fromarray(image).save(tmp / "images" / png_name(int(index)), compress_level=1)
        with open(tmp / spec.labels_file, "wb") as f:  # np.save on a path would append ".npy"
            np.save(f, labels.astype(np.float64))
        os.rename(tmp, root)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return root


def write_falcor3d_folder(root: str | os.PathLike, subset: int | None = None, seed: int = 0) -> Path:
    """Falcor3D look-alike folder (``images/`` + ``train-rec.labels``); subset None = all 233,280 images."""
    return write_folder(FALCOR3D, root, subset=subset, seed=seed)


def write_isaac3d_folder(root: str | os.PathLike, subset: int | None = None, seed: int = 0) -> Path:
    """Isaac3D look-alike folder (``images/`` + ``labels.npy``); subset None = all 737,280 images."""
    return write_folder(ISAAC3D, root, subset=subset, seed=seed)


def _load(spec: DatasetSpec, path: str | os.PathLike | None, image_size: int,
          cache_dir: str | os.PathLike | None, subset: int | None) -> GroundTruthData:
    size = check_image_size(image_size, spec)
    if path is not None:
        return read_nvlabs_folder(path, spec, image_size=size, cache_dir=cache_dir)
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    tag = "full" if subset is None else f"n{subset}"
    root = cache / f"{spec.name}-lookalike-{tag}-v{_LOOKALIKE_VERSION}"
    if not root.is_dir():
        count = spec.num_images if subset is None else subset
        print(f"writing the {spec.title} look-alike ({count:,} PNGs, 128x128) once into {root}",
              file=sys.stderr, flush=True)
        try:
            write_folder(spec, root, subset=subset, seed=0)
        except OSError as exc:
            raise UserError(f"cannot write the look-alike {root}: {one_line(exc)} "
                            "(set LATENTQUANT_CACHE to a writable folder)") from exc
    return read_nvlabs_folder(root, spec, image_size=size, cache_dir=cache)


def load_falcor3d(path: str | os.PathLike | None = None, image_size: int = 64,
                  cache_dir: str | os.PathLike | None = None, subset: int | None = LOOKALIKE_SUBSET) -> GroundTruthData:
    """Falcor3D from a ``Falcor3D_down128``-style folder, or (path None) a look-alike of ``subset`` images.

    ``subset`` only applies to the look-alike; None writes the whole 233,280-image grid.
    """
    return _load(FALCOR3D, path, image_size, cache_dir, subset)


def load_isaac3d(path: str | os.PathLike | None = None, image_size: int = 64,
                 cache_dir: str | os.PathLike | None = None, subset: int | None = LOOKALIKE_SUBSET) -> GroundTruthData:
    """Isaac3D from an ``Isaac3D_down128``-style folder, or (path None) a look-alike of ``subset`` images.

    ``subset`` only applies to the look-alike; None writes the whole 737,280-image grid.
    """
    return _load(ISAAC3D, path, image_size, cache_dir, subset)
