"""Small helpers every dataset module needs: the cache folder, the image-size check, grid indexing, seeded
subsets, atomic output, one-line error text."""

from __future__ import annotations

import errno
import os
import secrets
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path

import numpy as np

from ..errors import UserError
from .catalog import DatasetSpec


def default_cache_dir() -> Path:
    """Where look-alikes and decoded images are cached: ``$LATENTQUANT_CACHE``, else ``~/.cache/latentquant``."""
    return Path(os.environ.get("LATENTQUANT_CACHE") or Path.home() / ".cache" / "latentquant")


def check_image_size(image_size: object, spec: DatasetSpec) -> int:
    """``image_size`` as an int within the range ``spec.image_sizes`` its loader accepts, or a UserError."""
    low, high = spec.image_sizes
    if low == high:
        # One size only (dSprites): compared by equality, as the dSprites loader always did (64.0 passes too).
        if isinstance(image_size, bool) or image_size != low:
            raise UserError(f"{spec.title} images are {low}x{low} and are not resized; image_size must be {low}, "
                            f"got {image_size!r}")
        return low
    if isinstance(image_size, bool) or not isinstance(image_size, int | np.integer) or not low <= image_size <= high:
        raise UserError(f"image_size must be an integer between {low} and {high}, got {image_size!r}")
    return int(image_size)


def one_line(exc: BaseException) -> str:
    """An exception's message on one line (h5py and zipfile messages span several)."""
    return " ".join(str(exc).split()) or type(exc).__name__


def grid_classes(indices: np.ndarray, sizes: Sequence[int]) -> np.ndarray:
    """Row-major grid indices -> (N, K) class indices, the last factor fastest."""
    return np.stack(np.unravel_index(indices, tuple(sizes)), axis=1).astype(np.int64)


def grid_indices(classes: np.ndarray, sizes: Sequence[int]) -> np.ndarray:
    """(N, K) class indices -> row-major grid indices: the inverse of :func:`grid_classes`."""
    return np.ravel_multi_index(tuple(np.asarray(classes).T), tuple(sizes))


def classes_to_values(classes: np.ndarray, values: Sequence[np.ndarray]) -> np.ndarray:
    """(N, K) class indices -> (N, K) real factor values."""
    return np.stack([values[k][classes[:, k]] for k in range(len(values))], axis=1)


def subset_indices(subset: int | None, seed: int, total: int) -> np.ndarray:
    """All grid indices, or a sorted seeded sample of `subset` of them without replacement."""
    if subset is None:
        return np.arange(total, dtype=np.int64)
    if isinstance(subset, bool) or not isinstance(subset, int | np.integer) or not 1 <= subset <= total:
        raise UserError(f"subset must be None or a number of images in 1..{total}, got {subset!r}")
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(total, size=int(subset), replace=False)).astype(np.int64)


def ensure_lookalike(target: Path, description: str, write: Callable[[Path], object]) -> Path:
    """Write a look-alike to `target` once (the cache); later loads find it there.

    `description` says what is being made, for the one line printed while the user waits.
    """
    if not target.exists():
        print(f"{description} once into {target}", file=sys.stderr, flush=True)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            write(target)
        except OSError as exc:
            raise UserError(f"cannot write the look-alike cache {target}: {one_line(exc)} "
                            "(set LATENTQUANT_CACHE to a writable folder)") from exc
    return target


_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


@contextmanager
def atomic_output(path: Path) -> Iterator[Path]:
    """A temporary file beside `path` to write to; it becomes `path` only if the block ends without error,
    so a killed or failed writer leaves no file behind, and a reader sees the old file or the complete new one.

    The same guarantees as ``latentquant.fsio.atomic_write``, which data/ does not import (it stays free of the
    run machinery): the temporary file is created exclusively under a random name (a leftover or planted name,
    a symlink say, is never reused or followed), it ends in the target's suffix (writers that pick a format
    from it, or append one, see the target's), and it is fsynced before the rename.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(100):
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp{path.suffix}")
        try:
            os.close(os.open(tmp, _CREATE, 0o644))
            break
        except FileExistsError:
            continue
    else:
        raise FileExistsError(errno.EEXIST, "no free temporary name after 100 attempts", str(path))
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDONLY | os.O_NOFOLLOW)
        try:
            os.fsync(fd)  # the data is on disk before the name says it is complete
        finally:
            os.close(fd)
        os.replace(tmp, path)
    finally:
        with suppress(OSError):
            tmp.unlink(missing_ok=True)
