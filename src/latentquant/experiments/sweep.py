"""`latentquant sweep`: a grid of overrides, one ordinary run directory per trial.

    latentquant sweep model=qlae,ae seed=1,2,3 --workers 2 --out runs/qlae-vs-ae

Each `key=v1,v2,...` is an axis (commas inside [...] or {...} do not split); the grid is the cartesian
product in the order given. A trial is named after its swept values only, `model=qlae,seed=1`: it reads
as the overrides that differ, is safe as a directory name and needs no quoting in a shell. A sweep with no
swept axis has one trial, `trial`.

The sweep directory holds sweep.json (every trial's name and overrides, and the options), status.json
(every trial's current state, and a running local trial's pid, rewritten atomically on each change) and
one run directory per trial with its train.log. Trials are `latentquant train` subprocesses, so a trial
that crashes cannot take the others down, and an interrupted sweep is finished with `--resume`: finished
trials are skipped, killed ones resume from their last checkpoint, exactly as `latentquant train
resume=<run dir>` does.

Trials do not outlive the sweep. On SIGTERM, SIGINT or SIGHUP it stops them (SIGTERM, then SIGKILL after
a few seconds) and raises Interrupted; on Linux the kernel also sends each trial SIGTERM if the sweep dies
without cleaning up (kill -9), elsewhere such a sweep can leave its trials running. A trial whose run
directory another process is writing (it holds the directory's RunLock, see lock.py) is not started: it is
reported as `busy`, running elsewhere, with that process's pid, and counts as not done.

Backends: `local` runs `workers` subprocesses at a time on this machine; `ray` runs the same command as
Ray tasks (at most `workers` in flight, `threads` CPUs each) on whatever node Ray picks, so the sweep
directory must be on storage every node sees, and latentquant must be installed on every node.
"""

from __future__ import annotations

import ctypes
import functools
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import datetime
from hashlib import sha1
from pathlib import Path
from typing import Any

from .. import config as config_mod
from .. import runs
from ..checkpoint import atomic_write_text
from ..errors import UserError
from ..lock import lock_holder

BACKENDS = ("local", "ray")
STATES = ("finished", "running", "failed", "pending", "interrupted", "busy")  # a trial's state in status.json
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGINT", "SIGHUP") if hasattr(signal, name))
LOG = "train.log"
_HEADER = "$ latentquant train "  # the first line of every attempt in train.log
_MAX_NAME = 120  # well below the usual 255-byte limit on a file name
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_GRACE_S = 30.0  # a stopped trial finishes its step and saves a checkpoint; then SIGKILL
_POLL_S = 0.1  # how often the local backend looks at its trials (and at stop signals)


@dataclass(frozen=True)
class Trial:
    name: str  # directory name below the sweep directory; deterministic and unique
    overrides: tuple[str, ...]  # key=value strings for `latentquant train`, without run_dir


def split_values(raw: str) -> list[str]:
    """Split on commas outside brackets and quotes: `[16,32],[32,64]` is two values, `[16,32]` one."""
    values, depth, quote, start = [], 0, "", 0
    for i, ch in enumerate(raw):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            values.append(raw[start:i])
            start = i + 1
    values.append(raw[start:])
    return values


def _name_part(value: str) -> str:
    # Keep what is safe and readable in a file name; any other run of characters becomes one '-'.
    # Brackets, quotes and slashes at the ends add nothing: `[16,32]` -> `16-32`, `/data/a.h5` -> `data-a.h5`.
    cleaned = re.sub(r"[^A-Za-z0-9._+-]+", "-", value.strip("[]{}'\" /"))
    return cleaned or "none"


def _trial_name(parts: list[str]) -> str:
    name = ",".join(parts) or "trial"
    if len(name) > _MAX_NAME:  # long values (file paths): a readable prefix plus a hash keeps it unique
        name = f"{name[:_MAX_NAME - 9]}-{sha1(name.encode()).hexdigest()[:8]}"
    return name


def expand(args: list[str]) -> list[Trial]:
    """`key=v1,v2 ...` -> the grid of trials; every trial's config is resolved now, so bad input fails early."""
    axes: list[tuple[str, list[str]]] = []
    seen: dict[str, str] = {}
    for arg in args:
        key, sep, raw = arg.partition("=")
        if not sep or not key:
            raise UserError(f"expected key=value or key=v1,v2,..., got {arg!r}")
        full = config_mod.SHORTHANDS.get(key, key)
        if full in ("run_dir", "resume"):
            raise UserError(f"{key}= is set by the sweep: each trial runs in <out>/<trial name>")
        if full in seen:
            raise UserError(f"{key} is given twice ({seen[full]} and {arg})")
        seen[full] = arg
        values = split_values(raw)
        if len(values) > 1 and any(v == "" for v in values):
            raise UserError(f"empty value in {arg!r}")
        axes.append((key, values))
    trials: dict[str, Trial] = {}
    for combo in itertools.product(*(values for _, values in axes)):
        overrides = tuple(f"{key}={value}" for (key, _), value in zip(axes, combo, strict=True))
        swept = [f"{key}={_name_part(value)}" for (key, values), value in zip(axes, combo, strict=True)
                 if len(values) > 1]
        name = _trial_name(swept)
        if name in trials:
            raise UserError(f"two trials would share the directory {name!r}: {' '.join(trials[name].overrides)} "
                            f"and {' '.join(overrides)}")
        trials[name] = Trial(name, overrides)
    check_trials(list(trials.values()))
    return list(trials.values())


def check_trials(trials: list[Trial]) -> None:
    """Resolve every trial's config, so a bad key or value fails before anything runs (UserError naming the trial)."""
    for trial in trials:
        try:
            config_mod.resolve(list(trial.overrides))
        except UserError as e:
            raise UserError(f"trial {trial.name}: {e}") from None


def load_trials(out: Path) -> list[Trial]:
    """The trials saved in a sweep directory's sweep.json."""
    path = Path(out) / "sweep.json"
    try:
        saved = json.loads(path.read_text())
        return [Trial(t["name"], tuple(t["overrides"])) for t in saved["trials"]]
    except FileNotFoundError:
        raise UserError(f"no sweep.json in {out}: not a sweep directory (give the overrides to start one)") from None
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise UserError(f"{path} is not a valid sweep file ({e})") from None


def _save_sweep(out: Path, trials: list[Trial], options: dict[str, Any]) -> None:
    """sweep.json lists every trial ever run in this directory: saved ones first, then new ones."""
    known: dict[str, Trial] = {}
    if (out / "sweep.json").exists():
        known = {t.name: t for t in load_trials(out)}
    for trial in trials:
        if trial.name in known and known[trial.name].overrides != trial.overrides:
            raise UserError(f"trial {trial.name} in {out} was run with {' '.join(known[trial.name].overrides)}, "
                            f"not {' '.join(trial.overrides)}; use another --out")
        known[trial.name] = trial
    record = {"trials": [{"name": t.name, "overrides": list(t.overrides)} for t in known.values()],
              "options": options, "updated": datetime.now().isoformat(timespec="seconds")}
    atomic_write_text(out / "sweep.json", json.dumps(record, indent=2) + "\n")


def _die_with_parent() -> Callable[[], None] | None:
    """On Linux, a preexec_fn asking the kernel to SIGTERM the trial when its parent dies, even by kill -9.

    The kernel sends it when the *thread* that started the trial ends, so trials are started by the thread
    that waits for them (run_sweep's caller; a Ray task's own thread). None elsewhere.
    """
    prctl = _prctl()
    if prctl is None:
        return None
    parent, sigterm = os.getpid(), int(signal.SIGTERM)

    def preexec() -> None:  # runs in the child between fork and exec: as little as possible
        prctl(_PR_SET_PDEATHSIG, sigterm, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the request was in place
            os.kill(os.getpid(), sigterm)

    return preexec


@functools.cache
def _prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


def _start(args: list[str], run_dir: str) -> subprocess.Popen:
    """Start `latentquant train *args`, appending its output to run_dir/train.log (one header line per attempt)."""
    log = Path(run_dir) / LOG
    log.parent.mkdir(parents=True, exist_ok=True)
    preexec = _die_with_parent()
    # Without the kernel's help (not Linux), a session of its own lets _signal() reach the trial's own
    # children too; only a sweep that is killed outright can then leave a trial running.
    options: dict[str, Any] = {"preexec_fn": preexec} if preexec else {"start_new_session": True}
    with open(log, "a") as f:
        f.write(_HEADER + " ".join(args) + "\n")
        f.flush()
        # sys.executable is resolved where this runs, so on a Ray node it is that node's Python.
        return subprocess.Popen([sys.executable, "-m", "latentquant.cli", "train", *args], stdout=f,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"}, **options)


def _signal(proc: subprocess.Popen, sig: int) -> None:
    try:
        if _prctl() is None:  # the trial leads its own session (see _start): signal all of it
            os.killpg(proc.pid, sig)
        else:
            proc.send_signal(sig)
    except ProcessLookupError:
        pass


def _stop(procs: list[subprocess.Popen]) -> None:
    """SIGTERM every trial still running, then SIGKILL those not gone after _GRACE_S; returns once all ended."""
    running = [p for p in procs if p.poll() is None]
    for proc in running:
        _signal(proc, signal.SIGTERM)
    deadline = time.monotonic() + _GRACE_S
    for proc in running:
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _signal(proc, signal.SIGKILL)
            proc.wait()


def _run(args: list[str], run_dir: str) -> int:
    """Start and wait; an interrupted wait (Ctrl-C, a cancelled Ray task) ends the subprocess too."""
    proc = _start(args, run_dir)
    try:
        return proc.wait()
    except BaseException:
        _stop([proc])
        raise


# ("running", name, pid or None) | ("ended", name, exit code) | ("error", name, message)
# | ("busy", name, the lock holder's record): another process is writing the trial, so it was not started
Event = tuple[str, str, Any]
Job = tuple[str, list[str], str]  # (trial name, train arguments, run directory)


def _local(jobs: list[Job], workers: int, check: Callable[[], None]) -> Iterator[Event]:
    """`workers` subprocesses at a time; closing the generator (or `check` raising) stops those running.

    One thread starts and polls every trial, the one consuming the events: see _die_with_parent.
    """
    pending, procs = list(jobs), {}
    try:
        while pending or procs:
            check()
            while pending and len(procs) < workers:
                name, args, run_dir = pending.pop(0)
                holder = lock_holder(run_dir)
                if holder is not None:
                    yield ("busy", name, holder)
                    continue
                try:
                    procs[name] = _start(args, run_dir)
                except Exception as e:  # e.g. the log cannot be written: report it rather than stop the sweep
                    yield ("error", name, str(e))
                    continue
                yield ("running", name, procs[name].pid)
            for name, proc in list(procs.items()):
                if proc.poll() is not None:
                    del procs[name]
                    yield ("ended", name, proc.returncode)
            time.sleep(_POLL_S)
    finally:
        _stop(list(procs.values()))


def _import_ray():
    try:
        import ray
    except ImportError:
        raise UserError("--backend ray needs Ray: pip install 'latentquant[ray]'") from None
    return ray


def _ray(jobs: list[Job], workers: int, threads: int, address: str | None,
         check: Callable[[], None]) -> Iterator[Event]:
    """The same subprocesses as Ray tasks of `threads` CPUs, at most `workers` in flight (so they are running)."""
    ray = _import_ray()
    owned = not ray.is_initialized()  # a caller's Ray instance is used as is, and left running
    if owned and address:
        ray.init(address=address, log_to_driver=False)
    elif owned:
        ray.init(num_cpus=workers * threads, include_dashboard=False, log_to_driver=False)
    remote = ray.remote(num_cpus=threads, max_retries=0)(_run)
    pending, inflight = list(jobs), {}
    try:
        while pending or inflight:
            check()
            while pending and len(inflight) < workers:
                name, args, run_dir = pending.pop(0)
                holder = lock_holder(run_dir)  # the sweep directory is on storage this node sees too
                if holder is not None:
                    yield ("busy", name, holder)
                    continue
                inflight[remote.remote(args, run_dir)] = name
                yield ("running", name, None)
            if not inflight:  # every trial left was busy
                continue
            ready, _ = ray.wait(list(inflight), num_returns=1, timeout=0.5)
            for ref in ready:
                name = inflight.pop(ref)
                try:
                    yield ("ended", name, ray.get(ref))
                except ray.exceptions.RayError as e:  # the task itself died (node lost, ...)
                    yield ("error", name, str(e).strip().splitlines()[-1])
    finally:
        for ref in inflight:
            ray.cancel(ref)  # raises KeyboardInterrupt in the task, whose _run then ends its subprocess
        if inflight:
            ray.wait(list(inflight), num_returns=len(inflight), timeout=10)
        if owned:
            ray.shutdown()


def _last_line(log: Path) -> str:
    """The last non-blank line of the latest attempt in a trial's log: usually the error."""
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return "no log"
    starts = [i for i, line in enumerate(lines) if line.startswith(_HEADER)]
    attempt = [line.strip() for line in lines[starts[-1] + 1 if starts else 0:] if line.strip()]
    return attempt[-1] if attempt else "no output"


class _Status:
    """Every trial's state; one echoed line and a fresh status.json on each change."""

    def __init__(self, out: Path, names: list[str], echo: Callable[[str], None]) -> None:
        self.out, self.echo, self.t0 = out, echo, time.monotonic()
        self.trials: dict[str, dict[str, Any]] = {name: {"state": "pending"} for name in names}

    def set(self, name: str, state: str, note: str = "", **info: Any) -> None:
        self.trials[name] = {"state": state, **info}
        counts = self.counts()
        atomic_write_text(self.out / "status.json", json.dumps(
            {"updated": datetime.now().isoformat(timespec="seconds"), "counts": counts, "trials": self.trials},
            indent=2) + "\n")
        if note:
            s = int(time.monotonic() - self.t0)
            self.echo(f"[{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}] done {counts['finished']} · running "
                      f"{counts['running']} · failed {counts['failed']} · pending {counts['pending']}"
                      + (f" · busy {counts['busy']}" if counts["busy"] else "") + f"   {name} {note}")

    def counts(self) -> dict[str, int]:
        states = [t["state"] for t in self.trials.values()]
        return {s: states.count(s) for s in STATES}


def _summary(metrics: dict[str, Any] | None) -> str:
    if not metrics:
        return ""
    return f"(InfoM {metrics['infom']:.2f} InfoE {metrics['infoe']:.2f} InfoC {metrics['infoc']:.2f})"


def _where(holder: dict[str, Any]) -> str:
    return f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}"


class Interrupted(KeyboardInterrupt):
    """The sweep was stopped by SIGTERM, SIGINT or SIGHUP (`signum`), after stopping its running trials.

    A KeyboardInterrupt, so whoever handles Ctrl-C (the command line: "continue with --resume") handles it.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.signum = signum


@contextmanager
def _stop_on_signals() -> Iterator[Callable[[], None]]:
    """Yields a check() that raises Interrupted once one of STOP_SIGNALS has arrived.

    The handler only notes the signal: raising from it could land between starting a trial and recording
    it, and that trial would then outlive the sweep. Signals ignored already (nohup) stay ignored, and
    handlers can only be set from the main thread: elsewhere check() never raises.
    """
    received: list[int] = []
    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in STOP_SIGNALS:
            if signal.getsignal(sig) != signal.SIG_IGN:
                previous[sig] = signal.signal(sig, lambda signum, frame: received.append(signum))

    def check() -> None:
        if received:
            raise Interrupted(received[0])

    try:
        yield check
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)


def exit_code(results: dict[str, str]) -> int:
    """The command line's exit status for run_sweep's results: 0 if every trial finished, else 1."""
    return 0 if all(state == "finished" for state in results.values()) else 1


def run_sweep(out: Path, trials: list[Trial], *, workers: int = 1, threads: int | None = None,
              backend: str = "local", address: str | None = None, resume: bool = False,
              echo: Callable[[str], None] = print) -> dict[str, str]:
    """Run every trial in `out/<trial name>`; returns trial name -> "finished" | "failed" | "busy".

    busy: another process holds the trial's RunLock (it is being written elsewhere), so it was not started.
    Raises Interrupted (a KeyboardInterrupt) after stopping the running trials if a stop signal arrives.
    """
    if workers < 1:
        raise UserError(f"--workers must be at least 1, got {workers}")
    if threads is not None and threads < 1:
        raise UserError(f"--threads must be at least 1, got {threads}")
    if backend not in BACKENDS:
        raise UserError(f"unknown backend {backend!r}; known: {', '.join(BACKENDS)}")
    if address and backend != "ray":
        raise UserError("--address is for --backend ray")
    if len({t.name for t in trials}) != len(trials):
        raise UserError("trial names must be unique")
    threads = threads or max(1, (os.cpu_count() or 1) // workers)
    out = Path(out).expanduser().absolute()  # absolute: trials may run in another directory, or on another node
    if not resume:
        taken = [p.name for p in [out / "sweep.json", *(out / t.name for t in trials)] if p.exists()]
        if taken:
            raise UserError(f"{out} already holds a sweep ({', '.join(taken[:3])}): continue it with --resume, "
                            "or choose another --out")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot create the sweep directory {out}: {e.strerror or e}") from None
    if backend == "ray":
        _import_ray()  # fail before anything is written
    _save_sweep(out, trials, {"workers": workers, "threads": threads, "backend": backend, "address": address})

    status = _Status(out, [t.name for t in trials], echo)
    jobs: list[Job] = []
    skipped = 0
    for trial in trials:
        run_dir = out / trial.name
        state = runs.run_state(run_dir) if resume else "empty"
        if state == "finished":
            skipped += 1
            status.set(trial.name, "finished", metrics=runs.final_metrics(run_dir))
        elif state == "resumable":  # its saved config.yaml is the trial: resume it as it was
            jobs.append((trial.name, [f"resume={run_dir}"], str(run_dir)))
        else:  # the trial's own overrides come after ours, so a trial may set its own train.threads
            args = ["progress=false", f"train.threads={threads}", *trial.overrides, f"run_dir={run_dir}"]
            jobs.append((trial.name, args, str(run_dir)))
    echo(f"sweep {out}: {len(trials)} trials" + (f" ({skipped} finished already)" if skipped else "")
         + f", {workers} at a time, {threads} thread{'s' * (threads > 1)} each, {backend}"
         + (f" at {address}" if address else ""))

    try:
        with _stop_on_signals() as check, closing(_local(jobs, workers, check) if backend == "local" else
                                                  _ray(jobs, workers, threads, address, check)) as events:
            # leaving the block (done, an error here, a stop signal) stops the trials still running
            for kind, name, value in events:
                run_dir = out / name
                if kind == "running":  # a local trial's pid, for users and for the tests that kill sweeps
                    status.set(name, "running", "started", **({"pid": value} if value else {}))
                    continue
                if kind == "busy":
                    status.set(name, "busy", f"running elsewhere ({_where(value)}): not started", holder=value)
                    continue
                if kind == "ended" and value == 0 and runs.run_state(run_dir) == "finished":
                    metrics = runs.final_metrics(run_dir)
                    status.set(name, "finished", f"finished {_summary(metrics)}", metrics=metrics)
                    continue
                if kind == "ended":
                    code = f"killed by signal {-value}" if value < 0 else f"exit code {value}"
                    reason = f"{code}: {_last_line(run_dir / LOG) if value else 'ended before its last evaluation'}"
                else:
                    reason = value
                status.set(name, "failed", f"failed: {reason}  (log: {run_dir / LOG})", error=reason)
    except KeyboardInterrupt as e:
        stopped = [name for name, trial in status.trials.items() if trial["state"] == "running"]
        for name in stopped:
            status.set(name, "interrupted")
        echo(f"sweep {out}: {e if isinstance(e, Interrupted) else 'interrupted'}; ended {len(stopped)} running "
             f"trial{'s' * (len(stopped) != 1)} (--resume continues each from its last checkpoint)")
        raise
    results = {name: trial["state"] for name, trial in status.trials.items()}
    failed = [name for name, state in results.items() if state == "failed"]
    busy = {name: trial["holder"] for name, trial in status.trials.items() if trial["state"] == "busy"}
    echo(f"sweep {out}: {list(results.values()).count('finished')} finished, {len(failed)} failed"
         + (f" ({', '.join(failed)})" if failed else "") + (f", {len(busy)} running elsewhere" if busy else ""))
    if busy:
        echo("still being written by another process: "
             + ", ".join(f"{name} ({_where(holder)})" for name, holder in busy.items())
             + f"; once they end, continue with: latentquant sweep --resume --out {out}")
    return results
