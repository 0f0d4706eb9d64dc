"""Reading run directories after the fact: which runs exist, how far they got, what they scored.

A run directory is what `latentquant train` writes (config.yaml, metrics.jsonl, checkpoints/, eval/).
Sweeps, tables and reports only read it through these helpers, so the layout is defined in one place.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from . import config as config_mod
from .checkpoint import list_checkpoints
from .config import Config
from .errors import UserError

RunState = Literal["finished", "resumable", "empty"]


def is_run_dir(path: Path) -> bool:
    return (path / "config.yaml").is_file()


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
    return config_mod.load(Path(run_dir) / "config.yaml")


def read_log(run_dir: Path) -> list[dict[str, Any]]:
    """Every record of metrics.jsonl; a half-written last line (a killed run) is skipped."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def final_metrics(run_dir: Path, cfg: Config | None = None) -> dict[str, Any] | None:
    """The evaluation at the run's last step (None if it has not got there).

    Values from a later `latentquant eval` of that step (eval/step_N/metrics.json: DCI, MIG, ...) fill in
    what training did not compute; the figures' arrays (nmi, active) are left out.
    """
    run_dir = Path(run_dir)
    cfg = cfg or read_config(run_dir)
    steps = cfg.train.steps
    evals = [r for r in read_log(run_dir) if r.get("split") == "eval" and r.get("step") == steps]
    if not evals:
        return None
    result = dict(evals[-1])
    result.pop("split", None)
    saved = run_dir / "eval" / f"step_{steps}" / "metrics.json"
    if saved.exists():
        try:
            extra = json.loads(saved.read_text())
        except json.JSONDecodeError:
            extra = {}
        for key, value in extra.items():
            if key not in ("nmi", "active") and key not in result:
                result[key] = value
    return result


def run_state(run_dir: Path) -> RunState:
    """finished: evaluated at its last step; resumable: has a config (and maybe checkpoints); empty: neither."""
    run_dir = Path(run_dir)
    if not is_run_dir(run_dir):
        return "empty"
    try:
        done = final_metrics(run_dir) is not None
    except UserError:
        return "empty"
    return "finished" if done else "resumable"


def last_checkpoint(run_dir: Path) -> int | None:
    steps = list_checkpoints(Path(run_dir) / "checkpoints")
    return max(steps) if steps else None
