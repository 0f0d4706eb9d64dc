"""The run directory: its layout, and every operation on it (create, reopen to resume, lock, read back).

    config.yaml        the finished config (and what each resume changed, from which step)
    metrics.jsonl      one strict-JSON object per logged step: {"split": "train"|"eval", "step": N, ...}, and
                       per training session {"split": "time", "step": N, "steps_run": n, <seconds per stage>}
                       and, at its first step, {"split": "environment", "step": N, <versions, cpu, device>}
    tensorboard/       the same as TensorBoard scalars
    checkpoints/       step_<N>.safetensors + step_<N>.json (checkpoint.py)
    eval/step_<N>/     metrics.json and the figures of the evaluation at step N
    .lock              held by the one process writing the run (lock.py)

Training, `latentquant eval`, the report, tables, sweeps and `reproduce` all reach a run through `RunDir`.
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from . import config as config_mod
from .checkpoint import list_checkpoints
from .config import Config
from .errors import UserError

RunState = Literal["finished", "resumable", "empty"]


class RunDir:
    """Every path of one run directory, and how to create, reopen, lock and read it."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()
        self.lock = None

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    # --- the layout -----------------------------------------------------------------------------------------
    @property
    def config(self) -> Path:
        return self.path / "config.yaml"

    @property
    def log(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def tensorboard(self) -> Path:
        return self.path / "tensorboard"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def report(self) -> Path:
        return self.path / "report.html"

    def eval_dir(self, step: int) -> Path:
        return self.path / "eval" / f"step_{step}"

    def eval_steps(self) -> list[int]:
        """Steps with an evaluation directory, ascending."""
        root = self.path / "eval"
        if not root.is_dir():
            return []
        return sorted(int(p.name[5:]) for p in root.iterdir()
                      if p.name.startswith("step_") and p.name[5:].isdigit() and p.is_dir() and not p.is_symlink())

    # --- writing --------------------------------------------------------------------------------------------
    @classmethod
    def create(cls, cfg: Config) -> RunDir:
        """A new run directory for `cfg` (named from the model, data, seed and time if cfg.run_dir is None),
        locked, with its config.yaml written; refuses a directory that already holds a run."""
        if cfg.run_dir is None:
            stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
            cfg.run_dir = str(Path("runs") / f"{cfg.model.name}-{cfg.data.name}-seed{cfg.seed}-{stamp}")
        run = cls(cfg.run_dir)
        if run.config.exists():
            raise UserError(f"{run.path} already holds a run: resume it with resume={run.path}, or choose another "
                            "run_dir")
        try:
            run.path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise UserError(f"cannot write the run directory {run.path}: {e.strerror or e}") from None
        run.acquire()
        if run.config.exists():  # another process created it between the check and the lock
            run.release()
            raise UserError(f"{run.path} already holds a run: resume it with resume={run.path}")
        run.check_writable()
        config_mod.save(cfg, run.config)
        return run

    @classmethod
    def open(cls, path: str | Path) -> RunDir:
        """An existing run directory reopened for writing (resume): locked and checked writable."""
        run = cls(path)
        if not run.config.is_file():
            raise UserError(f"{run.path} is not a run directory (no config.yaml)")
        for part in (run.config, run.log, run.tensorboard, run.checkpoints, run.path / "eval"):
            if part.is_symlink():  # a write through it would land outside the run
                raise UserError(f"{part} is a symbolic link: a run directory's own files must be inside it")
        run.acquire()
        run.check_writable()
        return run

    def acquire(self) -> None:
        from .lock import RunLock

        self.lock = RunLock(self.path)
        self.lock.acquire()

    def release(self) -> None:
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    def check_writable(self) -> None:
        """Fail now, with one line, on a read-only or full disk rather than after training or evaluating."""
        from .fsio import atomic_write_text, disk_errors

        probe = self.path / ".write-test"
        with disk_errors(f"cannot write the run directory {self.path}"):
            atomic_write_text(probe, "probe\n")
            probe.unlink()

    def save_config(self, cfg: Config) -> None:
        from .fsio import disk_errors

        with disk_errors(f"cannot write {self.config}"):
            config_mod.save(cfg, self.config)

    # --- reading --------------------------------------------------------------------------------------------
    def is_run(self) -> bool:
        return self.config.is_file()

    def read_config(self) -> Config:
        return config_mod.load(self.config)

    def read_log(self) -> list[dict[str, Any]]:
        """Every record of metrics.jsonl; a half-written last line (a killed run) is skipped."""
        return read_log_file(self.log)

    def final_metrics(self, cfg: Config | None = None, step: int | None = None,
                      log: list[dict[str, Any]] | None = None) -> dict[str, Any] | None:
        """The evaluation at the run's last step, or at ``step`` (None if the run has no evaluation there).

        Values from a later `latentquant eval` of that step (eval/step_N/metrics.json: DCI, MIG, ...) fill in
        what training did not compute, and replace every score they have when that evaluation used another
        protocol (``protocol`` says which holds); the figures' arrays (nmi, active) are left out. ``log``: the
        run's records, if the caller has read them already.
        """
        cfg = cfg or self.read_config()
        steps = cfg.train.steps if step is None else step
        log = self.read_log() if log is None else log
        evals = [r for r in log if r.get("split") == "eval" and r.get("step") == steps]
        if not evals:
            return None
        result = dict(evals[-1])
        result.pop("split", None)
        result.setdefault("protocol", "qlae")  # runs from before protocols were recorded used the default
        saved = self.eval_dir(steps) / "metrics.json"
        if saved.is_file() and not saved.is_symlink():
            try:
                extra = json.loads(saved.read_text())
            except (json.JSONDecodeError, UnicodeDecodeError, OSError):
                extra = {}
            extra = extra if isinstance(extra, dict) else {}
            # An evaluation under another protocol replaces every score it has: one row never mixes two protocols.
            replace = extra.get("protocol", "qlae") != result["protocol"]
            for key, value in extra.items():
                if key not in ("nmi", "active") and (replace or key not in result):
                    result[key] = value
        return result

    def environments(self, log: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
        """Each training session's stack (environment.py) in the order they ran; none for runs written before."""
        log = self.read_log() if log is None else log
        return [r for r in log if r.get("split") == "environment"]

    def time_spent(self, cfg: Config | None = None, log: list[dict[str, Any]] | None = None) -> dict[str, float] | None:
        """{"wall_min": minutes the run's sessions took, "step_ms": milliseconds per training step after each
        session's first}, or None unless the sessions' time records cover every step from 0 to the last one: a
        killed session leaves none, and a wall time without it would be too short."""
        log = self.read_log() if log is None else log
        records = sorted((r for r in log if r.get("split") == "time"), key=lambda r: r.get("step", -1))
        at, total, steps, timed = 0, 0.0, 0.0, 0
        for r in records:
            values = [r.get(k) for k in ("step", "steps_run", "total", "steps")]
            if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
                return None
            step, run, seconds, in_steps = values
            if step - run != at:  # a gap (a session that left no record) or an overlap
                return None
            at, total, steps, timed = step, total + seconds, steps + in_steps, timed + max(run - 1, 0)
        if not records or at != (cfg or self.read_config()).train.steps:
            return None
        return {"wall_min": total / 60.0, "step_ms": 1e3 * steps / timed if timed else float("nan")}

    def state(self) -> RunState:
        """finished: evaluated at its last step; resumable: has a config (and maybe checkpoints); empty: neither."""
        if not self.is_run():
            return "empty"
        try:
            done = self.final_metrics() is not None
        except UserError:
            return "empty"
        return "finished" if done else "resumable"

    def checkpoint_steps(self) -> list[int]:
        return list_checkpoints(self.checkpoints)

    def last_checkpoint(self) -> int | None:
        steps = self.checkpoint_steps()
        return max(steps) if steps else None


def read_log_file(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def _finite_or_none(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


class Logger:
    """metrics.jsonl (one strict-JSON object per logged step; non-finite numbers as null) and TensorBoard."""

    def __init__(self, run: RunDir, resume_step: int | None) -> None:
        from .fsio import atomic_write_text, open_append

        self.path = run.log
        self.dropped_eval = False  # an evaluation at the resume step that must be made again
        if resume_step is not None and self.path.exists():
            # Lines written after the checkpoint are produced again; keep only what came before it.
            kept = []
            for rec in read_log_file(self.path):
                # The stopped session's time record sits at the resume step and stays: its steps are not redone.
                if rec.get("step", 0) < resume_step or (rec.get("step") == resume_step
                                                        and rec.get("split") in ("train", "time", "environment")):
                    kept.append(rec)
                elif rec.get("step") == resume_step and rec.get("split") == "eval":
                    self.dropped_eval = True
            atomic_write_text(self.path, "".join(json.dumps(r, allow_nan=False) + "\n" for r in kept))
        self.file = open_append(self.path)
        from torch.utils.tensorboard import SummaryWriter

        self.tb = SummaryWriter(str(run.tensorboard), purge_step=resume_step)

    def log(self, split: str, step: int, values: dict[str, Any]) -> None:
        record = {"split": split, "step": step, **{k: _finite_or_none(v) for k, v in values.items()}}
        self.file.write(json.dumps(record, allow_nan=False) + "\n")
        self.file.flush()
        for k, v in values.items():
            if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and k != "step":
                self.tb.add_scalar(f"{split}/{k}", v, step)

    def close(self) -> None:
        self.file.close()
        self.tb.close()


# Module-level readers: what sweeps, tables and reports call with a path.


def is_run_dir(path: Path) -> bool:
    return RunDir(path).is_run()


def find_runs(paths: list[str | Path]) -> list[Path]:
    """Run directories named directly or found below the given directories (a sweep, `runs/`), sorted.

    Raises UserError for a path that does not exist or holds no run.
    """
    found: list[Path] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if not path.exists():
            raise UserError(f"no such file or directory: {path}")
        if is_run_dir(path):
            found.append(path)
            continue
        below = sorted(p.parent for p in path.rglob("config.yaml") if is_run_dir(p.parent))
        if not below:
            raise UserError(f"{path} is not a run directory and holds none (no config.yaml below it)")
        found.extend(below)
    return list(dict.fromkeys(found))  # keep order, drop repeats


def read_config(run_dir: Path) -> Config:
    return RunDir(run_dir).read_config()


def read_log(run_dir: Path) -> list[dict[str, Any]]:
    return RunDir(run_dir).read_log()


def final_metrics(run_dir: Path, cfg: Config | None = None, step: int | None = None) -> dict[str, Any] | None:
    return RunDir(run_dir).final_metrics(cfg, step)


def time_spent(run_dir: Path, cfg: Config | None = None) -> dict[str, float] | None:
    return RunDir(run_dir).time_spent(cfg)


def minutes_and_seconds(seconds: float) -> str:
    """'7 min 0 s' for 419.6 s: rounded before the split, so it never reads '6 min 60 s'."""
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s"


def run_state(run_dir: Path) -> RunState:
    return RunDir(run_dir).state()


def last_checkpoint(run_dir: Path) -> int | None:
    return RunDir(run_dir).last_checkpoint()


def shared_dataset_configs(run_dirs: list[str | Path], why: str) -> list[Config]:
    """The configs of runs that must see the same images (same dataset file or look-alike, same size), or a
    UserError that lists each run's dataset, starting with ``why`` (e.g. "udr needs runs on the same dataset")."""
    import os

    configs = [RunDir(path).read_config() for path in run_dirs]
    seen = [(c.data.name, os.path.realpath(os.path.expanduser(c.data.path)) if c.data.path else None,
             c.data.image_size) for c in configs]
    if len(set(seen)) > 1:
        shown = "; ".join(f"{path}: {name} {where or '(look-alike)'} at {size}px"
                          for path, (name, where, size) in zip(run_dirs, seen, strict=True))
        raise UserError(f"{why}, got {shown}")
    return configs
