"""Checkpoints in safetensors (tensors) plus JSON (everything else): loading one never runs code.

A checkpoint at step N is the state after N updates: model weights, the moments of every optimizer (a dict
name -> optimizer, so a GAN's encoder and generator optimizers travel together) and the RNG states, so a
resumed run draws the same batches an uninterrupted one would. It is two files in the checkpoint directory:

- `step_N.safetensors`: the tensors, `model.<key>` and `optimizer_<name>.<param id>.<state key>`;
- `step_N.json`, the marker, written last: `{"format": 2, "step": N, "file": {"bytes": ..., "sha256": ...},
  "optimizer_<name>": {...}, ...}` with the size and SHA-256 of the safetensors file, the optimizers'
  non-tensor state, and the caller's `extra` state.

Both are written atomically through `fsio` (never following a symlink), and a checkpoint exists only once its
marker does. Loading checks everything before touching the model: the marker parses, the safetensors file has
the recorded size and digest (so truncation and flipped bytes are caught), its tensors parse, the model's keys
and shapes match exactly, and each optimizer's state fits its parameters. Any failure is a `CheckpointError`
naming the file. `load_checkpoint(..., fallback=True)` warns about a bad newest checkpoint and falls back to
the next older intact one. A model with a NaN or infinite tensor is never saved. Rotation keeps the `keep`
newest *intact* checkpoints, so a corrupt newer file never costs a good older one.

Checkpoints written before the digest (no "format"/"file" in the marker, a single optimizer under the plain
`optimizer` prefix) still load: there is no digest to check, the structural checks still apply.
"""

from __future__ import annotations

import hashlib
import json
import re
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_tensors
from safetensors.torch import save as serialize_tensors

from .errors import UserError
from .fsio import UnsafePathError, atomic_write_bytes, atomic_write_text, disk_errors, read_regular

__all__ = [
    "CheckpointError", "Optimizers", "atomic_write_text", "intact_checkpoints", "list_checkpoints",
    "load_checkpoint", "save_checkpoint", "verify_checkpoint",
]

FORMAT = 2
_NAME = re.compile(r"step_(\d+)\.json$")
_ANY_FILE = re.compile(r"step_(\d+)\.(?:json|safetensors)$")
# Temporary files of an interrupted write: fsio's random names and the fixed names of older versions.
_TEMP_FILE = re.compile(r"\.step_(\d+)\.(?:json|safetensors)(?:\.[0-9a-f]+)?\.tmp$")
_RESERVED = {"format", "step", "file"}
# Per-parameter state of torch's optimizers, shaped like the parameter. load_state_dict does not check shapes,
# so a mismatch would otherwise surface only at the next step, after the model was already overwritten.
_PARAM_SHAPED = {"exp_avg", "exp_avg_sq", "max_exp_avg_sq", "momentum_buffer", "square_avg", "grad_avg",
                 "acc_delta", "sum", "ax", "prev", "step_size", "mu_product"}

Optimizers = dict[str, torch.optim.Optimizer]


class CheckpointError(UserError):
    """A checkpoint that is missing, corrupt, or does not fit the model or optimizers: one line naming the file."""


def _paths(directory: Path, step: int) -> tuple[Path, Path]:
    return directory / f"step_{step}.safetensors", directory / f"step_{step}.json"


def _prefixes(optimizers: Optimizers) -> dict[str, torch.optim.Optimizer]:
    if not isinstance(optimizers, Mapping):
        raise TypeError(f"optimizers must be a dict name -> optimizer (e.g. {{'model': opt}}), "
                        f"got {type(optimizers).__name__}")
    for name in optimizers:
        if not isinstance(name, str) or not name or "." in name:
            raise ValueError(f"optimizer name {name!r} must be a non-empty string without '.'")
    return {f"optimizer_{name}": opt for name, opt in optimizers.items()}


def _optimizer_tensors(optimizer: torch.optim.Optimizer, prefix: str
                       ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split the optimizer state into tensors (for safetensors) and plain numbers (for JSON)."""
    state = optimizer.state_dict()
    tensors, scalars = {}, {}
    for pid, entry in state["state"].items():
        for key, value in entry.items():
            if isinstance(value, torch.Tensor) and value.ndim > 0:
                tensors[f"{prefix}.{pid}.{key}"] = value.contiguous()
            else:
                scalars[f"{pid}.{key}"] = value.item() if isinstance(value, torch.Tensor) else value
    groups = [{k: v for k, v in g.items() if k != "params"} for g in state["param_groups"]]
    return tensors, {"state": scalars, "param_groups": groups}


def _non_finite(model: torch.nn.Module) -> str | None:
    for key, value in model.state_dict().items():
        if (value.is_floating_point() or value.is_complex()) and not bool(torch.isfinite(value).all()):
            return key
    return None


def save_checkpoint(
    directory: Path, step: int, model: torch.nn.Module, optimizers: Optimizers, extra: dict[str, Any],
    keep: int = 2,
) -> Path:
    """Save the state after `step` updates and return the marker's path; then keep the `keep` newest intact
    checkpoints up to `step` (all of them if `keep` <= 0).

    Raises CheckpointError, writing nothing, if a model tensor is not finite; a UserError naming the checkpoint
    if the disk is full or not writable (no partial checkpoint is left behind).
    """
    directory = Path(directory)
    weights, marker = _paths(directory, step)
    prefixes = _prefixes(optimizers)
    clash = _RESERVED.intersection(extra) | {k for k in extra if k.startswith("optimizer")}
    if clash:
        raise ValueError(f"extra checkpoint state may not use the reserved keys {sorted(clash)}")
    if (bad := _non_finite(model)) is not None:
        raise CheckpointError(f"refusing to save checkpoint step {step} in {directory}: "
                              f"model tensor {bad!r} is not finite (NaN or inf)")
    tensors = {f"model.{k}": v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    opt_meta = {}
    for prefix, opt in prefixes.items():
        opt_tensors, opt_meta[prefix] = _optimizer_tensors(opt, prefix)
        tensors.update({k: v.cpu() for k, v in opt_tensors.items()})
    # Serialized in memory so the digest is of exactly the bytes written, and every write is a plain os.write
    # whose OSError disk_errors can explain.
    blob = serialize_tensors(tensors)
    meta = {"format": FORMAT, "step": step, "file": {"bytes": len(blob), "sha256": hashlib.sha256(blob).hexdigest()},
            **opt_meta, **extra}
    text = json.dumps(meta)  # state that JSON cannot hold fails here, before the disk is touched

    with disk_errors(f"saving checkpoint {weights}"):
        directory.mkdir(parents=True, exist_ok=True)
        # A marker left from an earlier run of this step must not vouch for the file about to replace its own.
        marker.unlink(missing_ok=True)
        try:
            atomic_write_bytes(weights, blob)
            atomic_write_text(marker, text)
        except BaseException:
            weights.unlink(missing_ok=True)
            raise
    if (problem := verify_checkpoint(directory, step)) is not None:
        marker.unlink(missing_ok=True)
        raise CheckpointError(f"checkpoint step {step} failed verification right after saving: {problem}")
    if keep > 0:
        with disk_errors(f"removing old checkpoints in {directory}"):
            _rotate(directory, step, keep)
    return marker


def _rotate(directory: Path, step: int, keep: int) -> None:
    """Keep `step` and the newest intact checkpoints before it, `keep` in all; remove what is older than `step`
    besides those, corrupt or not. Steps after `step` (another history's) are left alone."""
    older = [s for s in reversed(list_checkpoints(directory)) if s < step]
    kept = {step}
    for s in older:
        if len(kept) >= keep:
            break
        if verify_checkpoint(directory, s) is None:
            kept.add(s)
    doomed: list[tuple[int, Path]] = []
    for path in directory.iterdir():
        if (m := _ANY_FILE.match(path.name)) and int(m.group(1)) < step and int(m.group(1)) not in kept:
            doomed.append((int(m.group(1)), path))
        elif (m := _TEMP_FILE.match(path.name)) and int(m.group(1)) <= step:
            doomed.append((int(m.group(1)), path))
    # Markers go first: a checkpoint half removed by an interruption is then invisible, not corrupt.
    for _, path in sorted(doomed, key=lambda item: (item[0], not item[1].name.endswith(".json"))):
        path.unlink(missing_ok=True)


def list_checkpoints(directory: Path) -> list[int]:
    """Steps of complete checkpoints (those whose JSON marker and safetensors file exist), ascending.

    Existence only; `intact_checkpoints` also verifies them.
    """
    directory = Path(directory)
    if not directory.is_dir():
        return []
    steps = [int(m.group(1)) for p in directory.iterdir() if (m := _NAME.match(p.name))]
    return sorted(s for s in steps if (directory / f"step_{s}.safetensors").is_file())


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _read(directory: Path, step: int) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The marker and tensors of a checkpoint that passes every check not needing the model."""
    weights, marker = _paths(directory, step)

    def bad(path: Path, reason: str) -> CheckpointError:
        return CheckpointError(_one_line(f"bad checkpoint {path}: {reason}"))

    try:
        meta = json.loads(read_regular(marker, directory))
    except UnsafePathError as e:
        raise bad(marker, e.reason) from None
    except ValueError as e:
        raise bad(marker, f"the marker is not valid JSON (truncated or overwritten?): {e}") from None
    if not isinstance(meta, dict):
        raise bad(marker, f"the marker holds a JSON {type(meta).__name__}, not an object")
    fmt = meta.get("format", 1)
    if not isinstance(fmt, int) or fmt > FORMAT:
        raise bad(marker, f"format {fmt!r} is newer than this version of latentquant reads ({FORMAT})")
    if meta.get("step") != step:
        raise bad(marker, f"the marker is for step {meta.get('step')!r}, not {step}")
    record = meta.get("file")
    if fmt >= 2 and not (isinstance(record, dict) and isinstance(record.get("bytes"), int)
                         and isinstance(record.get("sha256"), str)):
        raise bad(marker, "the marker lacks the size and SHA-256 of the tensor file")

    try:
        blob = read_regular(weights, directory)
    except UnsafePathError as e:
        raise bad(weights, e.reason) from None
    if record is not None:
        if len(blob) != record["bytes"]:
            raise bad(weights, f"{len(blob)} bytes, the marker records {record['bytes']} (truncated or overwritten)")
        if hashlib.sha256(blob).hexdigest() != record["sha256"]:
            raise bad(weights, "its SHA-256 differs from the one the marker records (the file is corrupt)")
    try:
        tensors = load_tensors(blob)
    except SafetensorError as e:
        raise bad(weights, f"not a valid safetensors file: {e}") from None
    if not any(k.startswith("model.") for k in tensors):
        raise bad(weights, "it holds no model tensors")
    # Saving refuses a NaN model, but a file from before that guard may hold one; resuming from it would waste a run.
    for key, value in tensors.items():
        if key.startswith("model.") and value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise bad(weights, f"model tensor {key[len('model.'):]!r} is not finite")
    return meta, tensors


def verify_checkpoint(directory: Path, step: int) -> str | None:
    """None if checkpoint `step` is intact (marker, size, digest, tensors), else a line saying what is wrong."""
    try:
        _read(Path(directory), step)
    except CheckpointError as e:
        return str(e)
    return None


def intact_checkpoints(directory: Path) -> list[int]:
    """Steps of checkpoints that pass `verify_checkpoint`, ascending."""
    return [s for s in list_checkpoints(directory) if verify_checkpoint(directory, s) is None]


def _model_state(weights: Path, tensors: dict[str, torch.Tensor], model: torch.nn.Module
                 ) -> dict[str, torch.Tensor]:
    state = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = sorted(k for k in state if k not in expected)
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing keys {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}")
        if unexpected:
            parts.append(f"unexpected keys {', '.join(unexpected[:5])}{' ...' if len(unexpected) > 5 else ''}")
        raise CheckpointError(f"mismatched checkpoint {weights}: another model? {'; '.join(parts)}")
    for key, value in expected.items():
        if tuple(state[key].shape) != tuple(value.shape):
            raise CheckpointError(f"mismatched checkpoint {weights}: {key} has shape {tuple(state[key].shape)}, "
                                  f"the model's is {tuple(value.shape)}")
    return state


def _optimizer_state(weights: Path, marker: Path, optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor],
                     meta: dict[str, Any], prefix: str) -> dict[str, Any]:
    """The state dict to load into `optimizer`, checked against its parameters."""
    saved = meta[prefix]
    if not (isinstance(saved, dict) and isinstance(saved.get("state"), dict)
            and isinstance(saved.get("param_groups"), list)):
        raise CheckpointError(f"bad checkpoint {marker}: {prefix} is not an optimizer state")
    current = optimizer.state_dict()
    if len(saved["param_groups"]) != len(current["param_groups"]):
        raise CheckpointError(f"mismatched checkpoint {marker}: {prefix} has {len(saved['param_groups'])} "
                              f"parameter groups, the optimizer {len(current['param_groups'])}")
    params = [p for g in optimizer.param_groups for p in g["params"]]
    state: dict[int, dict[str, Any]] = {}
    try:
        for name, value in tensors.items():
            if name.startswith(f"{prefix}."):
                _, pid, key = name.split(".", 2)
                state.setdefault(int(pid), {})[key] = value
        for name, value in saved["state"].items():
            pid, key = name.split(".", 1)
            # AdamW keeps `step` as a tensor; restoring it as one keeps the update bit-identical.
            state.setdefault(int(pid), {})[key] = torch.tensor(float(value)) if key == "step" else value
    except (ValueError, TypeError):
        raise CheckpointError(f"bad checkpoint {weights}: malformed {prefix} state") from None
    for pid, entry in sorted(state.items()):
        if not 0 <= pid < len(params):
            raise CheckpointError(f"mismatched checkpoint {weights}: {prefix} has state for parameter {pid}, "
                                  f"the optimizer has {len(params)} parameters")
        for key in sorted(_PARAM_SHAPED.intersection(entry)):
            value = entry[key]
            if isinstance(value, torch.Tensor) and value.ndim > 0 and value.shape != params[pid].shape:
                raise CheckpointError(f"mismatched checkpoint {weights}: {prefix} {key} of parameter {pid} has shape "
                                      f"{tuple(value.shape)}, the parameter {tuple(params[pid].shape)}")
    # One optimizer gives every parameter it has stepped the same kinds of state: a gap is a lost tensor.
    every = set().union(*state.values()) if state else set()
    for pid, entry in sorted(state.items()):
        if lacking := sorted(every - set(entry)):
            raise CheckpointError(f"bad checkpoint {weights}: {prefix} state of parameter {pid} lacks "
                                  f"{', '.join(lacking)}")
    groups = [{**{k: _like(v, g.get(k)) for k, v in s.items()}, "params": g["params"]}
              for s, g in zip(saved["param_groups"], current["param_groups"], strict=True)]
    return {"state": state, "param_groups": groups}


def _like(saved: Any, current: Any) -> Any:
    # JSON has no tuples: give back `betas` and its kind as the optimizer built them, so a resumed optimizer's
    # state dict equals the uninterrupted one's.
    return tuple(saved) if isinstance(saved, list) and isinstance(current, tuple) else saved


def _load(directory: Path, step: int, model: torch.nn.Module, optimizers: Optimizers | None) -> dict[str, Any]:
    meta, tensors = _read(directory, step)
    weights, marker = _paths(directory, step)
    model_state = _model_state(weights, tensors, model)
    restored = []
    if optimizers is not None:
        prefixes = _prefixes(optimizers)
        for prefix, opt in prefixes.items():
            source = prefix
            # Before optimizers were always named, a single one was saved under the plain prefix.
            if prefix not in meta and len(prefixes) == 1 and "optimizer" in meta:
                source = "optimizer"
            if source not in meta:
                saved = sorted(k for k in meta if k.startswith("optimizer"))
                raise CheckpointError(f"mismatched checkpoint {marker}: no state for {prefix}; "
                                      f"it holds {', '.join(saved) or 'no optimizer state'}")
            restored.append((opt, _optimizer_state(weights, marker, opt, tensors, meta, source)))
    # Only now, with everything checked, is anything overwritten.
    model.load_state_dict(model_state)
    for opt, state in restored:
        opt.load_state_dict(state)
    return meta


def load_checkpoint(
    directory: Path, model: torch.nn.Module, optimizers: Optimizers | None = None, step: int | None = None,
    *, fallback: bool = False, warn: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Load checkpoint `step` (the newest if None) into `model` and `optimizers`; return its marker's contents.

    With `step=None` and `fallback=True` a bad newest checkpoint is reported through `warn` (default
    `warnings.warn`) and the next older one is tried, down to the oldest. Raises CheckpointError if there is no
    checkpoint, the one asked for is bad, or none is intact; the model and optimizers are then untouched.
    """
    directory = Path(directory)
    steps = list_checkpoints(directory)
    if not steps:
        raise CheckpointError(f"no checkpoint in {directory}")
    if step is not None:
        if step not in steps:
            raise CheckpointError(f"no checkpoint for step {step} in {directory}; available: {steps}")
        return _load(directory, step, model, optimizers)
    if not fallback:
        return _load(directory, steps[-1], model, optimizers)
    report = warn if warn is not None else (lambda message: warnings.warn(message, stacklevel=3))
    problems = []
    for candidate in reversed(steps):
        try:
            return _load(directory, candidate, model, optimizers)
        except CheckpointError as e:
            problems.append(str(e))
            if candidate != steps[0]:
                report(f"{e}; falling back to the next older checkpoint")
    raise CheckpointError(f"no intact checkpoint in {directory}: {' | '.join(problems)}")
