"""latentquant sweep as processes: a killed or signalled sweep takes its trainers with it, and a resumed sweep
never starts a second writer on a run (apart from test_sweep.py so that the two halves run side by side)."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from latentquant import runs
from latentquant.experiments import sweep as sweep_mod
from latentquant.experiments.sweep import exit_code, expand, run_sweep
from latentquant.lock import lock_holder

FAST = ["train.eval_every=100", "train.eval_early=false", "eval.figures=false"]
LINUX = sys.platform.startswith("linux")


def _proc_stat(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (state, ppid, ...); None once the pid is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()
    except FileNotFoundError:
        return None


def _alive(pid: int) -> bool:
    """Whether pid is a live process: a zombie (dead, not yet reaped by whoever inherited it) is not."""
    fields = _proc_stat(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def _long_sweep(out, tiny_args, tmp_path) -> subprocess.Popen:
    """`latentquant sweep seed=1,2 --workers 2` of trials far too long to finish, output in tmp_path/sweep.{out,err}.

    Its own session, so the test can kill whatever is left of it at the end, whatever the sweep did.
    """
    cmd = [sys.executable, "-m", "latentquant.cli", "sweep", "seed=1,2", *tiny_args, "train.steps=100000", *FAST,
           "--workers", "2", "--out", str(out)]
    with open(tmp_path / "sweep.out", "w") as stdout, open(tmp_path / "sweep.err", "w") as stderr:
        return subprocess.Popen(cmd, stdout=stdout, stderr=stderr, start_new_session=True)


def _training(out, proc: subprocess.Popen, names=("seed=1", "seed=2"), timeout=180) -> list[int]:
    """Wait until every named trial of the sweep `proc` has logged a training step; their pids (status.json)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the sweep ended early: {(out.parent / 'sweep.err').read_text()}"
        trials = json.loads((out / "status.json").read_text())["trials"] if (out / "status.json").exists() else {}
        pids = [trials.get(name, {}).get("pid") for name in names]
        if all(pids) and all(runs.read_log(out / name) for name in names):
            assert [_proc_stat(pid)[1] for pid in pids] == [str(proc.pid)] * len(pids)  # the sweep's trainers
            return pids
        time.sleep(0.1)
    raise AssertionError(f"the trials did not start training within {timeout} s")


def _end_session(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


@pytest.mark.slow
@pytest.mark.skipif(not LINUX, reason="only Linux signals a trial whose parent is gone")
def test_trials_die_with_a_sweep_killed_outright(tiny_args, tmp_path):
    out = tmp_path / "sweep"
    proc = _long_sweep(out, tiny_args, tmp_path)
    try:
        pids = _training(out, proc)
        os.kill(proc.pid, signal.SIGKILL)  # the sweep alone: no cleanup of its own can run
        proc.wait()
        deadline = time.monotonic() + 10
        while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not [pid for pid in pids if _alive(pid)], "a trial outlived its killed sweep"
    finally:
        _end_session(proc)


@pytest.mark.slow
def test_sigterm_stops_the_trials_and_says_how_to_resume(tiny_args, tmp_path):
    out = tmp_path / "sweep"
    proc = _long_sweep(out, tiny_args, tmp_path)
    try:
        pids = _training(out, proc)
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
        # the sweep ended its trials before it exited: none is left even for a moment
        assert not [pid for pid in pids if _alive(pid)]
    finally:
        _end_session(proc)
    assert code > 0  # it exited by itself, rather than being killed by the signal
    assert f"continue with: latentquant sweep --resume --out {out}" in (tmp_path / "sweep.err").read_text()
    assert f"sweep {out}: stopped by SIGTERM; ended 2 running trials" in (tmp_path / "sweep.out").read_text()
    status = json.loads((out / "status.json").read_text())
    assert {name: t["state"] for name, t in status["trials"].items()} == dict.fromkeys(["seed=1", "seed=2"],
                                                                                      "interrupted")


def test_a_trial_that_ignores_sigterm_is_killed(monkeypatch):
    monkeypatch.setattr(sweep_mod, "_GRACE_S", 0.5)
    code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); " \
           "time.sleep(60)"
    # its own session, as _stop expects of a trial where it signals whole sessions (not Linux)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert proc.stdout.readline() == "ready\n"
        started = time.monotonic()
        sweep_mod._stop([proc])
        assert proc.returncode == -signal.SIGKILL and time.monotonic() - started < 5
    finally:
        _end_session(proc)
        proc.stdout.close()


# Holds the RunLock of argv[1] until killed, as a trainer writing that run would; "held" once it does.
HOLD = "import sys, time; from latentquant.lock import RunLock; RunLock(sys.argv[1]).acquire(); " \
       "print('held', flush=True); time.sleep(120)"


@pytest.mark.slow
def test_resume_does_not_start_a_trial_another_process_is_writing(tiny_args, tmp_path):
    out = tmp_path / "sweep"
    trials = expand(["seed=1,2", *tiny_args, "train.steps=2", *FAST])
    writer = subprocess.Popen([sys.executable, "-c", HOLD, str(out / "seed=2")], stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline() == "held\n"
        lines: list[str] = []
        results = run_sweep(out, trials, resume=True, echo=lines.append)
        holder = lock_holder(out / "seed=2")
    finally:
        writer.kill()
        writer.wait()
        writer.stdout.close()
    assert results == {"seed=1": "finished", "seed=2": "busy"} and exit_code(results) == 1
    assert holder["pid"] == writer.pid
    where = f"pid {writer.pid} on {socket.gethostname()}"
    assert any(line.endswith(f"seed=2 running elsewhere ({where}): not started") for line in lines)
    assert lines[-2:] == [f"sweep {out}: 1 finished, 0 failed, 1 running elsewhere",
                          f"still being written by another process: seed=2 ({where}); once they end, continue "
                          f"with: latentquant sweep --resume --out {out}"]
    status = json.loads((out / "status.json").read_text())
    assert status["trials"]["seed=2"] == {"state": "busy", "holder": holder}
    assert status["counts"]["busy"] == 1 and status["counts"]["finished"] == 1
    assert not (out / "seed=2" / "train.log").exists()  # never started
    assert exit_code({"seed=1": "finished"}) == 0 and exit_code({"a": "finished", "b": "failed"}) == 1
