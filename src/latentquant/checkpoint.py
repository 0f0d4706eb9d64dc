"""Checkpoints in safetensors (tensors) plus JSON (everything else): loading one never runs code.

A checkpoint at step N is the state after N updates: model weights, optimizer moments, and the RNG
states, so a resumed run draws the same batches an uninterrupted one would. Each file is written to a
temporary name and renamed into place; the JSON file is written last and marks the checkpoint complete.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from .errors import UserError

_NAME = re.compile(r"step_(\d+)\.json$")


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def atomic_write_text(path: Path, text: str) -> None:
    _atomic_write_bytes(path, text.encode())


Optimizers = torch.optim.Optimizer | dict[str, torch.optim.Optimizer]


def _named(optimizer: Optimizers) -> dict[str, torch.optim.Optimizer]:
    """Tensor-name prefix -> optimizer; one optimizer keeps the plain `optimizer` prefix of older checkpoints."""
    if isinstance(optimizer, dict):
        return {f"optimizer_{name}": opt for name, opt in optimizer.items()}
    return {"optimizer": optimizer}


def _optimizer_tensors(optimizer: torch.optim.Optimizer, prefix: str = "optimizer"
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


def _restore_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict,
                       prefix: str = "optimizer") -> None:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if name.startswith(f"{prefix}."):
            _, pid, key = name.split(".", 2)
            state.setdefault(int(pid), {})[key] = value
    for name, value in meta["state"].items():
        pid, key = name.split(".", 1)
        # AdamW keeps `step` as a tensor; restoring it as one keeps the update bit-identical.
        state.setdefault(int(pid), {})[key] = torch.tensor(float(value)) if key == "step" else value
    current = optimizer.state_dict()
    groups = [{**saved, "params": g["params"]} for saved, g in zip(meta["param_groups"], current["param_groups"],
                                                                   strict=True)]
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def save_checkpoint(
    directory: Path, step: int, model: torch.nn.Module, optimizer: Optimizers, extra: dict[str, Any],
    keep: int = 2,
) -> Path:
    """`optimizer` is one optimizer, or a dict of them by name (a GAN's encoder and generator optimizers)."""
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {f"model.{k}": v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    opt_meta = {}
    for prefix, opt in _named(optimizer).items():
        opt_tensors, opt_meta[prefix] = _optimizer_tensors(opt, prefix)
        tensors.update({k: v.cpu() for k, v in opt_tensors.items()})
    weights = directory / f"step_{step}.safetensors"
    tmp = weights.with_name(f".{weights.name}.tmp")
    save_file(tensors, str(tmp))
    os.replace(tmp, weights)
    meta = {"step": step, **opt_meta, **extra}
    marker = directory / f"step_{step}.json"
    atomic_write_text(marker, json.dumps(meta))
    for old in list_checkpoints(directory)[:-keep] if keep > 0 else []:
        for suffix in (".json", ".safetensors"):
            (directory / f"step_{old}{suffix}").unlink(missing_ok=True)
    return marker


def list_checkpoints(directory: Path) -> list[int]:
    """Steps of complete checkpoints (those whose JSON marker exists), ascending."""
    if not directory.is_dir():
        return []
    steps = [int(m.group(1)) for p in directory.iterdir() if (m := _NAME.match(p.name))]
    return sorted(s for s in steps if (directory / f"step_{s}.safetensors").is_file())


def load_checkpoint(
    directory: Path, model: torch.nn.Module, optimizer: Optimizers | None = None, step: int | None = None
) -> dict[str, Any]:
    steps = list_checkpoints(directory)
    if not steps:
        raise UserError(f"no checkpoint in {directory}")
    if step is None:
        step = steps[-1]
    elif step not in steps:
        raise UserError(f"no checkpoint for step {step} in {directory}; available: {steps}")
    meta = json.loads((directory / f"step_{step}.json").read_text())
    tensors = load_file(str(directory / f"step_{step}.safetensors"))
    state = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    model.load_state_dict(state)
    if optimizer is not None:
        for prefix, opt in _named(optimizer).items():
            _restore_optimizer(opt, tensors, meta[prefix], prefix)
    return meta
