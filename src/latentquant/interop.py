"""A trained run as objects and arrays for other code: `load_run` (a notebook) and `encode_to_file`
(`latentquant encode`: latents of any images as an .npz)."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .build import Network, run_device
from .config import Config
from .data import DATASETS, GroundTruthData, load
from .data.own import load_arrays, load_images
from .errors import UserError
from .evaluate import data_split, load_run_model, to_input
from .models import LatentModel
from .runs import RunDir


@dataclass
class LoadedRun:
    """A run rebuilt for analysis: its model (eval mode, on the run's device if this machine has it), config,
    data, checkpoint step, and the rows it trained on (None: every row) and was evaluated on."""

    path: Path
    config: Config
    model: LatentModel
    data: GroundTruthData
    step: int
    train_rows: np.ndarray | None
    eval_rows: np.ndarray

    def encode(self, images: np.ndarray | None = None, batch_size: int | None = None) -> dict[str, np.ndarray]:
        """Latents of uint8 images (N, H, W, C) (default: the run's evaluation images); see `encode_images`."""
        images = self.data.images[np.sort(self.eval_rows)] if images is None else images
        return encode_images(self.model, images, batch_size=batch_size or self.config.eval.batch_size,
                             device=run_device(self.config))


def load_run(run_dir: str | os.PathLike, step: int | None = None, *, encoder: Network | None = None,
             decoder: Network | None = None) -> LoadedRun:
    """The model of checkpoint `step` (default: the latest intact one) with the run's config and data.

    A run trained with your own networks needs them again (`encoder=`, `decoder=`: modules of the same classes,
    or functions making them); their weights come from the checkpoint.
    """
    run, cfg, data, model, meta = _open_run(run_dir, step, encoder, decoder)
    train_rows, eval_rows = data_split(len(data), cfg.data)
    return LoadedRun(run.path, cfg, model, data, int(meta["step"]), train_rows, eval_rows)


@torch.no_grad()
def encode_images(model: LatentModel, images: Any, *, batch_size: int, device: torch.device | str = "cpu"
                  ) -> dict[str, np.ndarray]:
    """``representation`` (N, D) float32: what the metrics score (quantized values, posterior means, ...);
    ``z_hat`` (N, D'): what the decoder receives; ``codes`` (N, D) int64: codebook indices, for latents that
    have them."""
    was_training = model.training
    model.eval()
    reps, z_hats, codes = [], [], []
    try:
        for start in range(0, len(images), batch_size):
            # A copy: torch refuses to wrap a read-only memory map.
            out = model.encode(to_input(np.array(images[start:start + batch_size]), device))
            reps.append(out.representation.float().cpu())
            z_hats.append(out.z_hat.float().cpu())
            if out.indices is not None:
                codes.append(out.indices.long().cpu())
    finally:
        model.train(was_training)
    result = {"representation": torch.cat(reps).numpy(), "z_hat": torch.cat(z_hats).numpy()}
    if codes:
        result["codes"] = torch.cat(codes).numpy()
    return result


def _source_data(source: str, cfg: Config, own: GroundTruthData, key: str | None, progress: bool
                 ) -> GroundTruthData:
    """Images to encode, at the run's size and channel count: a folder, an array file, or a dataset by name."""
    path = Path(source).expanduser()
    size, channels = cfg.data.image_size, own.image_shape[2]
    if path.is_dir():
        return load_images(path, image_size=size, channels=channels, progress=progress)
    if path.is_file():
        return load_arrays(path, image_size=size, key=key, channels=channels)
    if source == cfg.data.name:
        return own  # the run's own data, from where it was trained
    if source in DATASETS and source not in ("images", "arrays"):
        data = load(source, image_size=size)
        if data.image_shape[2] != channels:
            raise UserError(f"{source} images have {data.image_shape[2]} channel(s), the run's {channels}")
        return data
    raise UserError(f"{source}: no such folder or file, and not a dataset name (the run's: {cfg.data.name})")


def encode_to_file(run_dir: str | os.PathLike, source: str, out: str | os.PathLike, *, step: int | None = None,
                   key: str | None = None, batch_size: int | None = None, progress: bool = True,
                   encoder: Network | None = None, decoder: Network | None = None
                   ) -> tuple[Path, dict[str, np.ndarray]]:
    """Encode `source` with a run's checkpoint and write the latents to the .npz `out` (atomically).

    Besides `encode_images`'s arrays the file holds ``files`` (a folder's relative file names) and, for labelled
    data, ``factors`` (N, K) real values and ``factor_names``.
    """
    from .fsio import atomic_write, disk_errors

    target = Path(out).expanduser()
    if target.suffix != ".npz":
        raise UserError(f"--out {target}: the latents are written as an .npz; name it <something>.npz")
    if not target.parent.is_dir():
        raise UserError(f"cannot write {target}: no folder {target.parent}")
    if batch_size is not None and batch_size < 1:
        raise UserError(f"--batch-size must be at least 1, got {batch_size}")
    run, cfg, own, model, meta = _open_run(run_dir, step, encoder, decoder)
    data = _source_data(source, cfg, own, key, progress)
    arrays = encode_images(model, data.images, batch_size=batch_size or cfg.eval.batch_size, device=run_device(cfg))
    arrays["step"] = np.asarray(meta["step"])
    if data.files is not None:
        arrays["files"] = np.asarray(data.files)
    if data.labelled:
        arrays["factors"] = data.values()
        arrays["factor_names"] = np.asarray(data.factor_names)
    with disk_errors(f"cannot write {target}"), atomic_write(target) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)
    return target, arrays


def _open_run(run_dir: str | os.PathLike, step: int | None, encoder: Network | None, decoder: Network | None
              ) -> tuple[RunDir, Config, GroundTruthData, LatentModel, dict[str, Any]]:
    run = RunDir(run_dir)
    if not run.is_run():
        raise UserError(f"{run.path} is not a run directory (no config.yaml)")
    cfg = run.read_config()
    data, model, meta = load_run_model(run.path, cfg, step, warn=lambda m: warnings.warn(m, stacklevel=4),
                                       encoder=encoder, decoder=decoder)
    return run, cfg, data, model, meta
