"""File writes and reads in a run directory that never follow a symbolic link at the final path component.

A run directory may be shared, copied or unpacked from an archive, so a name in it can be a symlink planted
to redirect a write (`metrics.jsonl -> ~/.bashrc`) or to smuggle a file into a report. Here:

- `atomic_write_bytes` / `atomic_write_text` / `atomic_write` write a temporary file that is created
  exclusively (`O_CREAT|O_EXCL|O_NOFOLLOW`) under a random name in the target's directory, fsync it and
  `os.replace` it onto the target. `O_EXCL` fails on any existing name, a symlink included, and `os.replace`
  replaces a symlink at the target instead of writing through it. A failure removes the temporary file, and
  readers see either the old file or the complete new one.
- `open_append` opens a log for appending with `O_NOFOLLOW`, refusing a symlink or a non-regular file.
- `read_regular` reads a file only if it is a regular file (not a symlink) whose real path is inside a root.
- `disk_errors` turns an OSError (disk full, read-only file system, permission denied, ...) into a one-line
  `UserError` that says what was being done.

Only the last path component is protected: a symlinked run directory or parent directory is the user's choice.
These functions raise OSError for I/O failures; wrap them in `disk_errors` to report those as a UserError.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from .errors import UserError

_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
_ATTEMPTS = 100


class UnsafePathError(UserError):
    """A path that is refused because it is a symlink, not a regular file, or outside the allowed root."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"refusing {path}: {reason}")
        self.path = path
        self.reason = reason


def _token() -> str:
    return secrets.token_hex(8)


def _create_temp(path: Path, suffix: str = "") -> tuple[int, Path]:
    """A new, empty, regular temporary file next to `path`, owned by this call: (fd, its path)."""
    for _ in range(_ATTEMPTS):
        tmp = path.with_name(f".{path.name}.{_token()}.tmp{suffix}")
        try:
            return os.open(tmp, _CREATE, 0o644), tmp
        except FileExistsError:  # a leftover or planted name, possibly a symlink: never reuse it
            continue
    raise FileExistsError(errno.EEXIST, f"no free temporary name after {_ATTEMPTS} attempts", str(path))


def _fsync_dir(directory: Path) -> None:
    # Makes the rename durable; some file systems cannot fsync a directory, which is no reason to fail a write.
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _unlink_quietly(path: Path) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Replace `path` with `data` atomically; a symlink at `path` is replaced, never written through."""
    with atomic_write(path) as tmp:
        fd = os.open(tmp, os.O_WRONLY | os.O_NOFOLLOW)
        try:
            view = memoryview(data)
            while view:  # os.write may write less than asked
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)


def atomic_write_text(path: Path, text: str) -> None:
    """`atomic_write_bytes` of `text` in UTF-8."""
    atomic_write_bytes(path, text.encode("utf-8"))


@contextlib.contextmanager
def atomic_write(path: Path) -> Iterator[Path]:
    """A temporary path for a writer that needs a file name (matplotlib's savefig); renamed onto `path` on success.

    The temporary file already exists, empty and owned by this call, so the writer overwrites a regular file
    rather than following whatever a guessed name might point to. It ends in the target's suffix so writers
    that pick a format from the extension pick the target's. If the block raises, the temporary file is removed
    and `path` is untouched.
    """
    path = Path(path)
    fd, tmp = _create_temp(path, path.suffix)
    os.close(fd)
    try:
        yield tmp
        # The writer may have replaced the file by name; only a regular file is moved into place.
        if not stat.S_ISREG(os.lstat(tmp).st_mode):
            raise UnsafePathError(tmp, "the temporary file was replaced by something that is not a regular file")
        fd = os.open(tmp, os.O_RDONLY | os.O_NOFOLLOW)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        _unlink_quietly(tmp)
        raise
    _fsync_dir(path.parent)


def open_append(path: Path) -> TextIO:
    """`path` opened for appending UTF-8 text (created if missing); a symlink or non-regular file is refused."""
    path = Path(path)
    # O_NONBLOCK: opening a planted FIFO must fail or return at once, not wait for a reader; it changes nothing
    # for the regular files that are accepted.
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags, 0o644)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise UnsafePathError(path, "it is a symbolic link") from None
        if e.errno == errno.ENXIO:
            raise UnsafePathError(path, "it is not a regular file") from None
        raise
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UnsafePathError(path, "it is not a regular file")
        return os.fdopen(fd, "a", encoding="utf-8")
    except BaseException:
        os.close(fd)
        raise


def read_regular(path: Path, root: Path) -> bytes:
    """The bytes of `path` if it is a regular file (not a symlink) whose real path lies inside `root`.

    Raises UnsafePathError (a UserError) naming `path` otherwise, or when it cannot be read.
    """
    path = Path(path)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise UnsafePathError(path, "no such file") from None
    except OSError as e:
        raise UnsafePathError(path, e.strerror or str(e)) from None
    if stat.S_ISLNK(st.st_mode):
        raise UnsafePathError(path, "it is a symbolic link")
    if not stat.S_ISREG(st.st_mode):
        raise UnsafePathError(path, "it is not a regular file")
    # A symlinked parent directory can still lead outside; the real path settles it.
    if not path.resolve().is_relative_to(Path(root).resolve()):
        raise UnsafePathError(path, f"it is outside {root}")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        raise UnsafePathError(path, e.strerror or str(e)) from None
    with os.fdopen(fd, "rb") as f:
        opened = os.fstat(f.fileno())
        # Swapped between the checks and the open: what was opened is not what was checked.
        if (opened.st_dev, opened.st_ino) != (st.st_dev, st.st_ino):
            raise UnsafePathError(path, "it changed while being opened")
        try:
            return f.read()
        except OSError as e:
            raise UnsafePathError(path, e.strerror or str(e)) from None


def _one_line(text: str) -> str:
    return " ".join(text.split())


@contextlib.contextmanager
def disk_errors(what: str) -> Iterator[None]:
    """Turn an OSError raised inside into a one-line UserError starting with `what` ("saving checkpoint X").

    Also usable as a decorator (`@disk_errors("writing the report")`).
    """
    try:
        yield
    except OSError as e:
        code, detail = e.errno, _one_line(e.strerror or str(e) or type(e).__name__)
        if code in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
            message = f"{what}: the disk is full ({detail}); free some space and try again"
        elif code == errno.EROFS:
            message = f"{what}: read-only file system"
        elif code in (errno.EACCES, errno.EPERM):
            message = f"{what}: permission denied"
        else:
            message = f"{what}: {detail}"
        raise UserError(_one_line(message)) from e
