"""Your own data: a folder of images (``data=images``) or an array file (``data=arrays``), labelled or not.

A folder is searched recursively for PNG, JPEG and WebP files (names starting with a dot are skipped, files
and folders alike). Every image is center-cropped to a square, resized to ``image_size`` (bicubic,
antialiased) and kept with one channel when every file is grayscale, else as RGB (``channels`` converts
after the cache: gray repeated, or RGB to luma). Decoding runs once, on two processes, into a memory-mapped
``.npy`` cache whose name carries the identity of the sources, as the NVlabs folders' cache does (nvlabs.py):
every file's relative name and (device, inode, size, mtime_ns, ctime_ns), the sha256 of the labels file and
the size. Unreadable files are skipped with one warning naming them; the names are kept in a sidecar beside
the cache, written before it, so a later load warns the same way. A labels CSV must have a row for every
image file, readable or not: it is checked before anything is decoded.

Labels are optional: ``factors.csv`` in the folder (or ``labels=<csv>``) with a ``file`` column naming each
image relative to the folder and one column per factor; for arrays, a ``factors_key`` array (N, K) or a CSV
with one row per image, in order. A column whose every cell is a finite number is numeric (the classes are
its sorted distinct values), any other is categorical (classes: the sorted distinct strings, values 0..m-1).
Without labels the data has zero factors: ``factors`` is (N, 0), and evaluation skips the supervised metrics.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import csv
import hashlib
import json
import math
import os
import stat
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from ..errors import UserError
from ._common import atomic_output, default_cache_dir, one_line
from .base import GroundTruthData

EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp")
LABELS_FILE = "factors.csv"
FILE_COLUMN = "file"
_GRAY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"}
_WORKERS = 2
_CHUNK = 64  # images per worker task: amortises pickling, keeps the progress bar moving
_POOL_MIN = 512  # below this, starting worker processes costs more than it saves
_CACHE_FORMAT = 1  # bump when the decode or the identity changes, so older caches never match
_SHOWN = 5  # skipped files named in a warning


@dataclass(frozen=True)
class Labels:
    """Factor labels parsed from a CSV or an array: class indices and what each class means."""

    factors: np.ndarray  # (N, K) int64
    names: list[str]
    values: list[np.ndarray]

    @property
    def sizes(self) -> list[int]:
        return [len(v) for v in self.values]


NO_LABELS = Labels(np.empty((0, 0), np.int64), [], [])


def _check_size(image_size: object) -> int:
    if isinstance(image_size, bool) or not isinstance(image_size, int | np.integer) or not 4 <= image_size <= 1024:
        raise UserError(f"data.image_size must be an integer between 4 and 1024, got {image_size!r}")
    return int(image_size)


def _check_channels(channels: object) -> int | None:
    if channels is not None and (isinstance(channels, bool) or channels not in (1, 3)):
        raise UserError(f"data.channels must be 1 (grayscale), 3 (RGB) or unset (what the data has), got {channels!r}")
    return None if channels is None else int(channels)


# --- labels -----------------------------------------------------------------------------------------------------


def _encode_column(name: str, cells: list[str], where: str) -> tuple[np.ndarray, np.ndarray]:
    """One factor column -> (class index per row, value per class); refuses missing and non-finite cells."""
    numbers: list[float] = []
    numeric = True
    for row, cell in enumerate(cells):
        text = cell.strip()
        if not text:
            raise UserError(f"{where}: row {row + 1}, column {name!r} is empty; every image needs every factor")
        try:
            number = float(text)
        except ValueError:
            numeric = False
            continue
        if not math.isfinite(number):
            raise UserError(f"{where}: row {row + 1}, column {name!r} is {text!r}; labels must be finite numbers "
                            "or category names")
        numbers.append(number)
    if numeric:
        values, classes = np.unique(np.asarray(numbers, dtype=np.float64), return_inverse=True)
        return classes.astype(np.int64), values
    names, classes = np.unique(np.asarray([c.strip() for c in cells]), return_inverse=True)
    return classes.astype(np.int64), np.arange(len(names), dtype=np.float64)


def _read_csv(file: Path) -> tuple[list[str], list[list[str]]]:
    try:
        with open(file, newline="", encoding="utf-8-sig") as f:
            rows = [row for row in csv.reader(f) if any(cell.strip() for cell in row)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UserError(f"{file}: cannot read the labels CSV: {one_line(exc)}") from exc
    if not rows:
        raise UserError(f"{file}: empty labels CSV; expected a header row and one row per image")
    header = [h.strip() for h in rows[0]]
    if len(set(header)) != len(header) or not all(header):
        raise UserError(f"{file}: the header {rows[0]} has an empty or repeated column name")
    body = rows[1:]
    for i, row in enumerate(body):
        if len(row) != len(header):
            raise UserError(f"{file}: row {i + 1} has {len(row)} cells, the header {len(header)}")
    if not body:
        raise UserError(f"{file}: the labels CSV has a header but no rows")
    return header, body


def csv_labels(file: Path, files: list[str] | None, n: int, ignored: set[str] = frozenset()) -> Labels:
    """Labels from a CSV: matched to ``files`` (relative names) by its ``file`` column, else one row per image in
    order (``files`` None: an array's rows). Rows naming an ``ignored`` file (skipped as unreadable) are dropped."""
    header, body = _read_csv(file)
    columns = list(zip(*body, strict=True))
    if files is not None:
        if FILE_COLUMN not in header:
            raise UserError(f"{file}: no {FILE_COLUMN!r} column; each row must name its image relative to the folder")
        col = header.index(FILE_COLUMN)
        named = [Path(c.strip()).as_posix() for c in columns[col]]
        row_of: dict[str, int] = {}
        for i, name in enumerate(named):
            if name in row_of:
                raise UserError(f"{file}: rows {row_of[name] + 1} and {i + 1} both name {name!r}")
            row_of[name] = i
        unknown = sorted(set(row_of) - set(files) - ignored)
        if unknown:
            raise UserError(f"{file}: row {row_of[unknown[0]] + 1} names {unknown[0]!r}, which is not an image in the "
                            f"folder ({len(unknown)} unknown name{'s' * (len(unknown) > 1)})")
        missing = [f for f in files if f not in row_of]
        if missing:
            raise UserError(f"{file}: no row for image {missing[0]!r} ({len(missing)} of {len(files)} images have "
                            "none); every image needs a row")
        order = np.asarray([row_of[f] for f in files])
        keep = [k for k in range(len(header)) if k != col]
    else:
        if len(body) != n:
            raise UserError(f"{file}: {len(body)} rows for {n} images; one row per image, in order")
        order = np.arange(n)
        keep = list(range(len(header)))
    encoded = [_encode_column(header[k], list(columns[k]), str(file)) for k in keep]
    factors = np.stack([c[order] for c, _ in encoded], axis=1) if encoded else np.empty((len(order), 0), np.int64)
    return Labels(factors.astype(np.int64), [header[k] for k in keep], [v for _, v in encoded])


def array_labels(labels: np.ndarray, n: int, where: str) -> Labels:
    """(N,) or (N, K) numeric labels -> classes per column (each column's sorted distinct values)."""
    if labels.ndim == 1:
        labels = labels[:, None]
    if labels.ndim != 2 or labels.shape[0] != n:
        raise UserError(f"{where}: labels have shape {labels.shape}, expected ({n}, K), one row per image")
    if not (np.issubdtype(labels.dtype, np.number) or labels.dtype == bool):
        raise UserError(f"{where}: labels have dtype {labels.dtype}, expected numbers")
    labels = np.asarray(labels, dtype=np.float64)
    bad = ~np.isfinite(labels)
    if bad.any():
        row, col = (int(i) for i in np.argwhere(bad)[0])
        raise UserError(f"{where}: the label in row {row}, column {col} is {labels[row, col]}; labels must be finite")
    factors, values = [], []
    for k in range(labels.shape[1]):
        v, c = np.unique(labels[:, k], return_inverse=True)
        factors.append(c.astype(np.int64))
        values.append(v)
    return Labels(np.stack(factors, axis=1), [f"factor_{k}" for k in range(labels.shape[1])], values)


def _dataset(name: str, images: np.ndarray, labels: Labels, files: list[str] | None = None) -> GroundTruthData:
    factors = labels.factors if labels.names else np.empty((len(images), 0), np.int64)
    return GroundTruthData(name, images, factors, list(labels.names), labels.sizes, list(labels.values), files)


def _labels_file(root: Path, labels: str | os.PathLike | None) -> Path | None:
    if labels is not None:
        file = Path(labels).expanduser()
        if not file.is_file():
            raise UserError(f"data.labels: no such file {file}")
        return file
    file = root / LABELS_FILE
    if os.path.lexists(file) and not file.is_file():
        raise UserError(f"{file}: the labels file is not a regular file (a dangling link, a folder?)")
    return file if file.is_file() else None


# --- folders of images ----------------------------------------------------------------------------------------


def scan_folder(root: Path) -> tuple[list[str], np.ndarray, list[tuple[str, str]]]:
    """Image files under ``root``, sorted by relative name: (names, (N, 5) stat table, [(name, why) skipped]).

    A symlink counts as its target; anything but a regular file is skipped here, before a decoder could block
    on a FIFO.
    """
    names, stats, skipped = [], [], []
    for folder, dirs, files in os.walk(root, onerror=lambda e: skipped.append((str(e.filename), one_line(e)))):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in files:
            if name.startswith(".") or not name.lower().endswith(EXTENSIONS):
                continue
            path = Path(folder) / name
            rel = path.relative_to(root).as_posix()
            try:
                st = path.stat()
            except OSError as exc:
                skipped.append((rel, f"cannot stat: {one_line(exc)}"))
                continue
            if not stat.S_ISREG(st.st_mode):
                skipped.append((rel, "not a regular file"))
                continue
            names.append(rel)
            stats.append((st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns))
    order = sorted(range(len(names)), key=names.__getitem__)
    table = np.asarray(stats, dtype=np.int64).reshape(-1, 5)[order]
    return [names[i] for i in order], table, skipped


def decode_image(path: str, size: int) -> tuple[np.ndarray, bool]:
    """One file -> (size, size, 3) uint8 RGB, center-cropped and resized; and whether the source is grayscale."""
    with Image.open(path) as img:
        img.load()
        gray = img.mode in _GRAY_MODES
        img = ImageOps.exif_transpose(img)  # phone JPEGs store their rotation in EXIF
        if img.mode not in ("RGB", "L"):
            img = img.convert("L" if gray else "RGB")
        # Antialiased bicubic over the whole crop, as the NVlabs loader resizes.
        img = ImageOps.fit(img, (size, size), Image.BICUBIC, centering=(0.5, 0.5))
        return np.asarray(img.convert("RGB"), dtype=np.uint8), gray


def _decode_chunk(task: tuple[list[str], int]) -> list[tuple[np.ndarray | None, bool, str | None]]:
    """Errors come back as text: an exception raised in a worker loses the file it was about."""
    paths, size = task
    out: list[tuple[np.ndarray | None, bool, str | None]] = []
    for path in paths:
        try:
            pixels, gray = decode_image(path, size)
            out.append((pixels, gray, None))
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
            out.append((None, False, one_line(exc)))
    return out


def _decode_all(root: Path, names: list[str], size: int, target: np.ndarray, progress: bool
                ) -> tuple[np.ndarray, np.ndarray, list[tuple[str, str]]]:
    """Decode every file into ``target`` (N, size, size, 3); returns (readable mask, grayscale mask, failures)."""
    from tqdm import tqdm

    paths = [str(root / n) for n in names]
    tasks = [(paths[s:s + _CHUNK], size) for s in range(0, len(paths), _CHUNK)]
    ok = np.zeros(len(paths), dtype=bool)
    gray = np.zeros(len(paths), dtype=bool)
    failed: list[tuple[str, str]] = []
    bar = tqdm(total=len(paths), desc="decoding images", unit="img", disable=not progress, dynamic_ncols=True,
               file=sys.stderr)
    row = 0

    def consume(results) -> None:
        nonlocal row
        for chunk in results:
            for pixels, is_gray, error in chunk:
                if error is None:
                    target[row] = pixels
                    ok[row], gray[row] = True, is_gray
                else:
                    failed.append((names[row], error))
                row += 1
            bar.update(len(chunk))

    try:
        if len(paths) < _POOL_MIN:
            consume(map(_decode_chunk, tasks))
        else:
            with concurrent.futures.ProcessPoolExecutor(_WORKERS) as pool:
                consume(pool.map(_decode_chunk, tasks))  # map keeps order, so rows land where they belong
    finally:
        bar.close()
    return ok, gray, failed


def _identity(names: list[str], stats: np.ndarray, labels_digest: str, size: int) -> str:
    """Digest of everything the cached pixels depend on (stat identity: see the nvlabs module docstring)."""
    h = hashlib.sha256(f"{_CACHE_FORMAT}|{size}|{labels_digest}|".encode())
    h.update("\0".join(names).encode())
    h.update(np.ascontiguousarray(stats, dtype="<i8").tobytes())
    return h.hexdigest()[:32]


def _open_cache(file: Path, size: int) -> tuple[np.ndarray, list[tuple[str, str]]] | None:
    """The cache's memory map and the files it skipped, or None unless it is exactly a complete cache."""
    try:
        meta = json.loads(file.with_suffix(".json").read_text())
        images = np.load(file, mmap_mode="r")
        complete = (isinstance(images, np.memmap) and images.dtype == np.uint8 and images.ndim == 4
                    and images.shape[1:3] == (size, size) and images.shape[3] in (1, 3)
                    and images.shape[0] == meta["images"] and images.offset + images.nbytes == file.stat().st_size)
        skipped = [(str(n), str(why)) for n, why in meta["skipped"]]
    except (OSError, ValueError, EOFError, KeyError, TypeError):
        return None
    return (images, skipped) if complete else None


def _warn_skipped(root: Path, skipped: list[tuple[str, str]], total: int) -> None:
    if not skipped:
        return
    shown = "; ".join(f"{name} ({why})" for name, why in skipped[:_SHOWN])
    more = f"; and {len(skipped) - _SHOWN} more" if len(skipped) > _SHOWN else ""
    warnings.warn(f"{root}: skipped {len(skipped)} of {total} image files that cannot be read: {shown}{more}",
                  UserWarning, stacklevel=3)


def _decode_into_cache(root: Path, names: list[str], size: int, file: Path, progress: bool
                       ) -> tuple[np.ndarray, list[tuple[str, str]]]:
    """Decode every file, then write the readable ones at their channel count: a sidecar naming the skipped
    files first, the images second, each renamed into place only once complete."""
    import tempfile

    scratch: Path | None = None
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        for old in file.parent.glob(file.name.rsplit("-", 1)[0] + "-*.npy"):  # this folder's caches at this size
            if old != file:
                with contextlib.suppress(OSError):  # a reader's memory map stays valid after the unlink
                    old.unlink()
                    old.with_suffix(".json").unlink(missing_ok=True)
        print(f"decoding {len(names):,} images from {root} to {size}x{size} once, into {file}", file=sys.stderr,
              flush=True)
        # Every file decodes to RGB first: whether all are grayscale is known only once all are read.
        fd, name = tempfile.mkstemp(dir=file.parent, prefix=f".{file.stem}.", suffix=".scratch.npy")
        os.close(fd)
        scratch = Path(name)
        target = np.lib.format.open_memmap(scratch, mode="w+", dtype=np.uint8, shape=(len(names), size, size, 3))
        ok, gray, failed = _decode_all(root, names, size, target, progress)
        if not ok.any():
            first, why = failed[0]
            raise UserError(f"{root}: none of the {len(names)} image files can be read ({first}: {why})")
        c = 1 if gray[ok].all() else 3
        with atomic_output(file.with_suffix(".json")) as tmp:
            tmp.write_text(json.dumps({"images": int(ok.sum()), "skipped": failed, "channels": c}))
        with atomic_output(file) as tmp:
            out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(int(ok.sum()), size, size, c))
            rows = np.flatnonzero(ok)
            for s in range(0, len(rows), 1024):  # a block at a time: the scratch may not fit in memory
                block = np.asarray(target[rows[s:s + 1024]])
                out[s:s + len(block)] = block[..., :1] if c == 1 else block  # gray sources: R = G = B
            out.flush()
            del out, target
            # Mapped before the rename, so a concurrent loader's stale-cache cleanup cannot pull it away.
            images = np.load(tmp, mmap_mode="r")
    except OSError as exc:
        raise UserError(f"cannot write the decoded-image cache {file}: {one_line(exc)} "
                        "(set LATENTQUANT_CACHE or cache_dir to a writable folder)") from exc
    finally:
        if scratch is not None:
            scratch.unlink(missing_ok=True)
    return images, failed


def convert_channels(images: np.ndarray, channels: int | None) -> np.ndarray:
    """(N, H, W, C) uint8 with `channels` channels (None: as they are): gray repeated to RGB, RGB to ITU-R 601-2
    luma as PIL's "L" computes it."""
    c = images.shape[-1]
    if channels is None or channels == c:
        return images
    if channels == 3:
        return np.repeat(np.asarray(images), 3, axis=-1)
    luma = np.asarray(images, dtype=np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return np.rint(luma)[..., None].astype(np.uint8)


def load_images(path: str | os.PathLike | None = None, image_size: int = 64, labels: str | os.PathLike | None = None,
                channels: int | None = None, cache_dir: str | os.PathLike | None = None, progress: bool = True,
                **unused: object) -> GroundTruthData:
    """A folder of PNG, JPEG and WebP images (and its ``factors.csv``, or the CSV at ``labels``)."""
    _refuse(unused, "images")
    if path is None:
        raise UserError("data=images needs data.path=<folder of PNG, JPEG or WebP images>")
    size, channels = _check_size(image_size), _check_channels(channels)
    root = Path(path).expanduser()
    if not root.is_dir():
        raise UserError(f"data=images: {root} is {'a file, not a folder' if root.exists() else 'not found'}"
                        + ("; use data=arrays for an array file" if root.is_file() else ""))
    names, stats, unreadable = scan_folder(root)
    if not names:
        extra = f" ({len(unreadable)} unreadable entries, first {unreadable[0][0]})" if unreadable else ""
        raise UserError(f"{root}: no PNG, JPEG or WebP files in this folder or below it{extra}")
    labels_file = _labels_file(root, labels)
    table = (csv_labels(labels_file, names, len(names), {n for n, _ in unreadable}) if labels_file
             else NO_LABELS)
    digest = hashlib.sha256(labels_file.read_bytes()).hexdigest() if labels_file else "none"
    identity = _identity(names, stats, digest, size)
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    key = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:16]
    file = cache / f"images-{key}-{size}px-{identity}.npy"
    found = _open_cache(file, size)
    # The cache holds the channels the files have; another count is a conversion in memory.
    images, failed = found if found is not None else _decode_into_cache(root, names, size, file, progress)
    images = convert_channels(images, channels)
    skipped = unreadable + failed
    _warn_skipped(root, skipped, len(names) + len(unreadable))
    bad = {n for n, _ in failed}
    kept = [n not in bad for n in names]
    if failed and table.names:
        table = Labels(table.factors[kept], table.names, table.values)
    return _dataset("images", images, table, [n for n, k in zip(names, kept, strict=True) if k])


# --- arrays ------------------------------------------------------------------------------------------------------


def _read_array(file: Path, key: str | None, what: str) -> np.ndarray:
    """The array under ``key`` in a .npy, .npz or HDF5 file (a .npy is memory-mapped)."""
    suffix = file.suffix.lower()
    try:
        if suffix == ".npy":
            if key is not None and what == "images":
                raise UserError(f"{file}: a .npy file holds one array; data.key does not apply")
            return np.load(file, mmap_mode="r", allow_pickle=False)
        if suffix == ".npz":
            with np.load(file, allow_pickle=False) as npz:
                return _member(file, list(npz.files), key, what, lambda k: npz[k])
        if suffix in (".h5", ".hdf5"):
            import h5py

            with h5py.File(file, "r") as h5:
                keys = [k for k in h5.keys() if isinstance(h5[k], h5py.Dataset)]
                return _member(file, keys, key, what, lambda k: h5[k][()])
    except UserError:
        raise
    except (OSError, ValueError, EOFError, KeyError) as exc:
        raise UserError(f"{file}: cannot read: {one_line(exc)}") from exc
    raise UserError(f"{file}: expected a .npy, .npz, .h5 or .hdf5 file")


def _member(file: Path, keys: list[str], key: str | None, what: str, read) -> np.ndarray:
    if key is None:
        if len(keys) != 1:
            raise UserError(f"{file} holds {len(keys)} arrays ({', '.join(keys) or 'none'}); name the {what} with "
                            f"data.{'key' if what == 'images' else 'factors_key'}=<name>")
        key = keys[0]
    if key not in keys:
        raise UserError(f"{file}: no array {key!r}; it holds {', '.join(keys) or 'none'}")
    return np.asarray(read(key))


def as_uint8_images(array: np.ndarray, where: str, block: int = 4096) -> np.ndarray:
    """(N, H, W) or (N, H, W, C) uint8, bool or float in [0, 1] -> (N, H, W, C) uint8 (a view when already so)."""
    if array.ndim == 3:
        array = array[..., None]
    if array.ndim != 4 or array.shape[-1] not in (1, 3):
        raise UserError(f"{where}: images have shape {tuple(array.shape)}; expected (N, H, W) or (N, H, W, C) "
                        "with C = 1 or 3")
    if array.dtype == np.uint8:
        return array
    if array.dtype == bool:
        return array.astype(np.uint8) * 255
    if not np.issubdtype(array.dtype, np.floating):
        raise UserError(f"{where}: images have dtype {array.dtype}; expected uint8 (0..255) or float in [0, 1]")
    out = np.empty(array.shape, dtype=np.uint8)
    for s in range(0, len(array), block):
        x = np.asarray(array[s:s + block], dtype=np.float64)
        if not np.isfinite(x).all() or x.min(initial=0.0) < 0.0 or x.max(initial=0.0) > 1.0:
            raise UserError(f"{where}: float images must be finite and within [0, 1] (rows {s}..{s + len(x) - 1} "
                            "are not)")
        out[s:s + len(x)] = np.rint(x * 255.0)
    return out


def fit_images(images: np.ndarray, size: int, channels: int | None) -> np.ndarray:
    """Center-crop and resize (N, H, W, C) uint8 images to (N, size, size, channels) as `load_images` does."""
    c = images.shape[-1]
    if images.shape[1:3] != (size, size):
        out = np.empty((len(images), size, size, c), dtype=np.uint8)
        for i, image in enumerate(images):
            img = Image.fromarray(np.ascontiguousarray(image[..., 0] if c == 1 else image))
            pixels = np.asarray(ImageOps.fit(img, (size, size), Image.BICUBIC, centering=(0.5, 0.5)), dtype=np.uint8)
            out[i] = pixels.reshape(size, size, c)
        images = out
    return convert_channels(images, channels)


def load_arrays(path: str | os.PathLike | None = None, image_size: int = 64, key: str | None = None,
                factors_key: str | None = None, labels: str | os.PathLike | None = None, channels: int | None = None,
                **unused: object) -> GroundTruthData:
    """Images (N, H, W[, C]) under ``key`` of a .npz / .h5 file, or a .npy; labels from ``factors_key`` or a CSV."""
    _refuse(unused, "arrays")
    if path is None:
        raise UserError("data=arrays needs data.path=<file.npz | file.h5 | file.npy> (and data.key=<array name>)")
    size, channels = _check_size(image_size), _check_channels(channels)
    file = Path(path).expanduser()
    if not file.is_file():
        raise UserError(f"data=arrays: {file} is {'a folder; use data=images' if file.is_dir() else 'not found'}")
    if factors_key is not None and labels is not None:
        raise UserError("give the labels once: data.factors_key (an array in the file) or data.labels (a CSV)")
    images = fit_images(as_uint8_images(_read_array(file, key, "images"), str(file)), size, channels)
    if len(images) == 0:
        raise UserError(f"{file}: the image array is empty")
    if factors_key is not None:
        if file.suffix.lower() == ".npy":
            raise UserError(f"{file}: a .npy holds one array; put the labels in a CSV (data.labels=<csv>)")
        table = array_labels(_read_array(file, factors_key, "labels"), len(images), f"{file}[{factors_key}]")
    elif labels is not None:
        table = csv_labels(Path(labels).expanduser(), None, len(images))
    else:
        table = NO_LABELS
    return _dataset("arrays", images, table)


def _refuse(unused: dict[str, object], name: str) -> None:
    if unused:
        raise UserError(f"data={name} takes no option {sorted(unused)[0]!r}")


# --- writing a folder (latentquant data export) -------------------------------------------------------------------


def write_image_folder(data: GroundTruthData, root: str | os.PathLike, rows: np.ndarray | None = None) -> Path:
    """``images/<row>.png`` and a ``factors.csv`` of the real factor values; written beside ``root`` and renamed
    into place, so a killed export leaves no half-written folder."""
    import shutil

    root = Path(root)
    if os.path.lexists(root):
        raise UserError(f"{root} already exists; remove it or choose another --out")
    rows = np.arange(len(data)) if rows is None else np.asarray(rows)
    tmp = root.with_name(f".{root.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        (tmp / "images").mkdir(parents=True)
        width = len(str(max(len(data) - 1, 0)))
        names = []
        for r in rows:
            name = f"images/{int(r):0{width}d}.png"
            image = np.asarray(data.images[int(r)])
            Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(tmp / name, compress_level=1)
            names.append(name)
        if data.num_factors:
            values = data.values(rows)
            with open(tmp / LABELS_FILE, "w", newline="") as f:
                writer = csv.writer(f)
                writer.writerow([FILE_COLUMN, *data.factor_names])
                for name, row in zip(names, values, strict=True):
                    writer.writerow([name, *(repr(float(v)) for v in row)])
        os.rename(tmp, root)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return root
