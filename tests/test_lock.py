"""RunLock: one writer per run directory, held by the kernel for the writer's life; lock_holder for readers."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager

import pytest

from latentquant.errors import UserError
from latentquant.lock import LOCK_FILE, RunLock, lock_holder

# Holds the lock on argv[1] until killed; with --children it first starts a forked child and a subprocess
# that outlive it. Prints "held <child pids>" once it holds the lock.
HOLD = """
import os, subprocess, sys, time
from latentquant.lock import RunLock
RunLock(sys.argv[1]).acquire()
kids = []
if "--children" in sys.argv:
    pid = os.fork()
    if pid == 0:
        time.sleep(60)
        os._exit(0)
    kids += [pid, subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]).pid]
print("held", *kids, flush=True)
time.sleep(60)
"""


@contextmanager
def holder(run_dir, *flags):
    """A process holding run_dir's lock: yields (its Popen, the pids of its children); kills them all after."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(run_dir), *flags], stdout=subprocess.PIPE, text=True)
    kids: list[int] = []
    try:
        line = proc.stdout.readline().split()
        assert line[:1] == ["held"], f"the holder did not get the lock (exit {proc.wait()})"
        kids = [int(pid) for pid in line[1:]]
        yield proc, kids
    finally:
        for pid in [proc.pid, *kids]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.wait()
        proc.stdout.close()


def test_a_second_writer_process_is_refused_then_takes_over_once_the_first_is_killed(tmp_path):
    run = tmp_path / "run"
    with holder(run) as (proc, _):
        record = json.loads((run / LOCK_FILE).read_text())
        assert record["pid"] == proc.pid and record["host"] == socket.gethostname()
        assert record["argv"] == ["-c", str(run)]
        assert lock_holder(run) == record
        with pytest.raises(UserError) as refused:
            RunLock(run).acquire()
        assert str(refused.value) == (f"{run} is being written by process {proc.pid} on {socket.gethostname()} "
                                      f"(started {record['started']}); wait for it or stop it")
        assert lock_holder(run) == record  # the failed attempt left the holder's record alone
        proc.send_signal(signal.SIGKILL)  # no cleanup: its file stays, but the kernel drops the lock
        proc.wait()
        assert (run / LOCK_FILE).exists() and lock_holder(run) is None
        with RunLock(run) as lock:
            assert lock.took_over == record
            assert lock.record["pid"] == os.getpid()
            assert lock_holder(run) == lock.record == json.loads((run / LOCK_FILE).read_text())
        assert not (run / LOCK_FILE).exists() and lock_holder(run) is None


def test_children_of_the_holder_do_not_keep_the_lock(tmp_path):
    run = tmp_path / "run"
    with holder(run, "--children") as (proc, kids):
        assert len(kids) == 2
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        # The forked child drops its copy in an at-fork hook, which it may not have been scheduled to run yet
        # when the parent printed "held": give it a moment, then both kids must be alive and lock-free.
        deadline = time.monotonic() + 5
        while lock_holder(run) is not None and time.monotonic() < deadline:
            time.sleep(0.01)
        for kid in kids:
            os.kill(kid, 0)
        assert lock_holder(run) is None
        lock = RunLock(run)
        assert lock.acquire()["pid"] == proc.pid
        lock.release()


def test_in_one_process_a_second_lock_fails_and_release_allows_another(tmp_path):
    run = tmp_path / "new" / "run"  # created by the lock
    first = RunLock(run)
    assert first.acquire() is None and first.took_over is None and first.held
    with pytest.raises(UserError, match=rf"^{run} is being written by process {os.getpid()} on .*; wait for it"):
        RunLock(run).acquire()
    with pytest.raises(RuntimeError, match="already held"):
        first.acquire()
    assert first.held and lock_holder(run)["pid"] == os.getpid()
    first.release()
    first.release()  # a second release does nothing
    assert not first.held and lock_holder(run) is None
    with pytest.raises(KeyError), RunLock(run):
        assert lock_holder(run)["pid"] == os.getpid()
        raise KeyError("an error inside the block still releases the lock")
    assert lock_holder(run) is None
    again = RunLock(run)
    assert again.acquire() is None  # a cleanly released lock is not a stale one
    again.release()


def test_a_planted_symlink_or_other_file_is_refused(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    target = tmp_path / "target"
    target.write_text("keep me")
    (run / LOCK_FILE).symlink_to(target)
    with pytest.raises(UserError, match="is a symbolic link"):
        RunLock(run).acquire()
    assert target.read_text() == "keep me" and lock_holder(run) is None
    (run / LOCK_FILE).unlink()
    (run / LOCK_FILE).symlink_to(tmp_path / "nowhere")  # dangling: nothing may be created through it
    with pytest.raises(UserError, match="is a symbolic link"):
        RunLock(run).acquire()
    assert not (tmp_path / "nowhere").exists()
    (run / LOCK_FILE).unlink()
    os.mkfifo(run / LOCK_FILE)  # would block a plain open()
    with pytest.raises(UserError, match="not a regular file"):
        RunLock(run).acquire()
    assert lock_holder(run) is None


def test_lock_holder_of_missing_and_stale_locks(tmp_path):
    assert lock_holder(tmp_path / "missing") is None
    assert lock_holder(tmp_path) is None
    stale = {"pid": 999999, "host": "elsewhere", "started": "2024-01-01T00:00:00+00:00", "argv": []}
    (tmp_path / LOCK_FILE).write_text(json.dumps(stale))
    assert lock_holder(tmp_path) is None  # a file, but no process holds it
    with RunLock(tmp_path) as lock:
        assert lock.took_over == stale
    (tmp_path / LOCK_FILE).write_text("not json")
    with RunLock(tmp_path) as lock:
        assert lock.took_over is None
