"""One writer per run directory: `<run_dir>/.lock`, held with flock(2) for as long as the writer lives.

    with RunLock(run_dir) as lock:
        if lock.took_over:
            print(f"took over the stale lock of process {lock.took_over['pid']}")
        ...  # train, writing into run_dir

The lock is the kernel's, not the file's: flock is dropped when its holder exits however it exits (kill -9,
a lost machine), so a crashed writer never leaves a directory locked. The file only says who holds it, as
JSON {pid, host, started, argv}, for the message a second writer gets. A clean release deletes the file;
one left behind by a dead writer is a stale lock, taken over by the next writer (`took_over`).

flock belongs to an open file description, so every descriptor copied from it keeps the lock. The file is
opened with O_CLOEXEC, so a program the holder starts (a subprocess) never gets it, and a child forked
without exec closes its copy at once, so neither can keep the lock after the holder is gone. Two RunLocks
on one directory in one process open the file twice, so the second one fails like another process would.

`lock_holder(run_dir)` tells a reader (`sweep --resume`, `eval`, `report`) whether a live writer is there.
On network file systems this is only as good as their flock: NFSv4 on Linux supports it across machines.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import stat
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from .errors import UserError

LOCK_FILE = ".lock"
# How long acquire() keeps trying before it reports the holder: long enough to ride out a reader's probe
# (lock_holder holds the lock for microseconds) and a new holder that has the lock but not yet its record.
_CONTENDED_S = 0.5
_RETRY_S = 0.05
_OPEN_FLAGS = os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK  # O_NONBLOCK: a planted FIFO must not hang open()

_held: set[RunLock] = set()  # every lock this process holds, for the fork hook below


class RunLock:
    """The writer lock of one run directory (created if missing); a context manager, or acquire()/release().

    `took_over` is the record of the dead writer whose stale lock acquire() took over, else None.
    `record` is this process's own record while it holds the lock.
    """

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_FILE
        self.took_over: dict[str, Any] | None = None
        self.record: dict[str, Any] | None = None
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> dict[str, Any] | None:
        """Take the lock or raise UserError naming the live holder; returns `took_over`."""
        if self._fd is not None:
            raise RuntimeError(f"{self.path} is already held by this RunLock")
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise UserError(f"cannot write the run directory {self.run_dir}: {e.strerror or e}") from None
        deadline = time.monotonic() + _CONTENDED_S
        while True:
            fd = _open(self.path, os.O_RDWR | os.O_CREAT)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if time.monotonic() < deadline:
                    os.close(fd)
                    time.sleep(_RETRY_S)
                    continue
                holder = _read_record(fd)
                os.close(fd)
                raise UserError(busy_message(self.run_dir, holder)) from None
            except OSError as e:  # ENOLCK: a network file system without locks
                os.close(fd)
                raise UserError(f"cannot lock {self.path}: {e.strerror or e}") from None
            except BaseException:
                os.close(fd)
                raise
            # The holder we waited for deletes the file as it lets go, so we may hold a file that is no
            # longer there while the next writer locks a new one under the same name: start again.
            if _is_at(fd, self.path):
                break
            os.close(fd)
        try:
            stale = _read_record(fd)
            self.record = {"pid": os.getpid(), "host": socket.gethostname(),
                           "started": datetime.now().astimezone().isoformat(timespec="seconds"),
                           "argv": list(sys.argv)}
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(self.record) + "\n").encode(), 0)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        self.took_over = stale or None
        _held.add(self)
        return self.took_over

    def release(self) -> None:
        """Delete the lock file and let go; a no-op if not held."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        _held.discard(self)
        try:
            if _is_at(fd, self.path):  # deleted while still locked, so no one can lock it in between
                self.path.unlink()
        except OSError:
            pass  # a file left behind is only a stale lock: the next writer takes it over
        finally:
            os.close(fd)

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def lock_holder(run_dir: str | Path) -> dict[str, Any] | None:
    """The record ({pid, host, started, argv}) of the live process holding run_dir's lock now, else None.

    The record is {} if the holder has not written it yet. Never takes the lock for longer than a probe.
    """
    path = Path(run_dir) / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDONLY | _OPEN_FLAGS)
    except OSError:
        return None  # no lock file, or one RunLock refuses to use (a symlink): nobody holds it
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_record(fd)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def busy_message(run_dir: str | Path, holder: dict[str, Any]) -> str:
    """The one-line refusal for a second writer of run_dir."""
    return (f"{run_dir} is being written by process {holder.get('pid', '?')} on {holder.get('host', '?')} "
            f"(started {holder.get('started', '?')}); wait for it or stop it")


def _open(path: Path, flags: int) -> int:
    try:
        fd = os.open(path, flags | _OPEN_FLAGS, 0o644)
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.EMLINK):  # EMLINK: what some BSDs say for O_NOFOLLOW on a link
            raise UserError(f"{path} is a symbolic link, not a lock file; remove it") from None
        raise UserError(f"cannot open the lock file {path}: {e.strerror or e}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise UserError(f"{path} is not a regular file, so not a lock file; remove it")
    return fd


def _is_at(fd: int, path: Path) -> bool:
    """Whether `path` still names the file open as `fd`."""
    try:
        on_disk = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (on_disk.st_dev, on_disk.st_ino) == (mine.st_dev, mine.st_ino)


def _read_record(fd: int) -> dict[str, Any]:
    chunks = []
    offset = 0
    while chunk := os.pread(fd, 65536, offset):
        chunks.append(chunk)
        offset += len(chunk)
    try:
        record = json.loads(b"".join(chunks))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {}  # empty (a holder that has not written it yet) or not ours
    return record if isinstance(record, dict) else {}


def _close_in_child() -> None:
    # A forked child shares the holder's open file description: closing its copy (never LOCK_UN, which
    # would unlock the parent too) lets the lock go when the holder dies, whatever the child does.
    for lock in list(_held):
        if lock._fd is not None:
            os.close(lock._fd)
            lock._fd = None
    _held.clear()


os.register_at_fork(after_in_child=_close_in_child)
