"""A finished config -> live objects: the data, the model, the device, the thread count.

The only caller of the model registry besides the tests; training, `latentquant eval` and the report all
build through here, so a run is rebuilt the way it was trained.
"""

from __future__ import annotations

import os

import torch

from .config import Config
from .data import GroundTruthData, load
from .errors import UserError
from .models import LatentModel, ModelParts, build_model
from .modules.networks import repeating_stack


def load_data(cfg: Config) -> GroundTruthData:
    return load(cfg.data.name, cfg.data.path, image_size=cfg.data.image_size)


def model_parts(cfg: Config, data: GroundTruthData) -> ModelParts:
    h, w, c = data.image_shape
    if h != w:
        raise UserError(f"images must be square, got {h}x{w}")
    stack = repeating_stack(cfg.model.widths, cfg.model.blocks_per_stage)
    if h % stack.downsampling:
        raise UserError(f"image size {h} is not divisible by 2**len(model.widths) = {stack.downsampling}")
    return ModelParts(in_channels=c, image_size=h, stack=stack, dense=tuple(cfg.model.dense), dataset_size=len(data))


def make_model(cfg: Config, data: GroundTruthData) -> LatentModel:
    """The model of a finished config (config.resolve / resume / load), freshly initialised from torch's RNG."""
    if cfg.model.num_latents is None:
        raise ValueError("make_model needs a finished config (config.resolve fills model.num_latents)")
    try:
        return build_model(cfg.model.name, model_parts(cfg, data), cfg.model.num_latents, **cfg.model.hyper)
    except (TypeError, ValueError) as e:
        raise UserError(f"cannot build {cfg.model.name}: {e}") from None


def set_threads(n: int) -> None:
    torch.set_num_threads(n or os.cpu_count() or 1)


def train_device(cfg: Config) -> torch.device:
    """The device training asks for; refused with one line when this machine does not have it."""
    device = torch.device(cfg.train.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError("train.device=cuda but no CUDA device is available")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise UserError("train.device=mps but no MPS device is available")
    return device


def run_device(cfg: Config) -> torch.device:
    """The run's device if this machine has it, else the CPU (a GPU run can be evaluated on a laptop)."""
    name = cfg.train.device
    return torch.device(name if name == "cpu" or (name.startswith("cuda") and torch.cuda.is_available()) else "cpu")
