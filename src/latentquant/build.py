"""A finished config -> live objects: the data, the model, the device, the thread count.

The only caller of the model registry besides the tests; training, `latentquant eval` and the report all
build through here, so a run is rebuilt the way it was trained.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .config import Config
from .data import GroundTruthData, load
from .data.catalog import USER_DATA
from .errors import UserError
from .models import LatentModel, ModelParts, build_model
from .modules.networks import repeating_stack

# A network, or a function of no arguments that makes one (called after torch.manual_seed(cfg.seed), so that
# its initialisation is the run's).
Network = nn.Module | Callable[[], nn.Module]


def load_data(cfg: Config) -> GroundTruthData:
    """The config's dataset; `data.channels` is checked against what it holds (your own data converts to it)."""
    d = cfg.data
    options = {}
    if d.name in USER_DATA:
        options = {"channels": d.channels, "labels": d.labels}
        if d.name == "images":
            options["progress"] = cfg.progress
        else:
            options.update(key=d.key, factors_key=d.factors_key)
    data = load(d.name, d.path, image_size=d.image_size, **options)
    if d.channels is not None and data.image_shape[2] != d.channels:
        raise UserError(f"data.channels={d.channels}, but the {d.name} images have {data.image_shape[2]} "
                        "channel(s); leave it unset")
    return data


def class_path(module: nn.Module) -> str:
    return f"{type(module).__module__}.{type(module).__qualname__}"


def user_networks(cfg: Config, encoder: Network | None, decoder: Network | None, *, record: bool
                  ) -> tuple[nn.Module | None, nn.Module | None]:
    """Your own networks, made from their factories; `record` (a new run) writes their classes into the config,
    otherwise they must be the classes the config recorded (a resume, an evaluation rebuilds the same model)."""
    made = []
    for what, given in (("encoder", encoder), ("decoder", decoder)):
        module = given() if given is not None and not isinstance(given, nn.Module) else given
        if module is not None and not isinstance(module, nn.Module):
            raise UserError(f"your {what} must be a torch.nn.Module or a function returning one, got "
                            f"{type(module).__name__}")
        recorded = getattr(cfg.model, what)
        name = None if module is None else class_path(module)
        if record and recorded is None:
            setattr(cfg.model, what, name)
        elif name != recorded:
            if name is None:
                raise UserError(f"this run was trained with your own {what} ({recorded}); pass it again: "
                                f"latentquant.fit(cfg, {what}=...) or latentquant.load_run(run_dir, {what}=...)")
            built = "the built-in one" if recorded is None else recorded
            raise UserError(f"your {what} is a {name}, but this run's {what} is {built}")
        made.append(module)
    return made[0], made[1]


def model_parts(cfg: Config, data: GroundTruthData, *, builtin: bool = True) -> ModelParts:
    """`builtin`: a built-in network will be made, so the image size must suit its stack."""
    h, w, c = data.image_shape
    if h != w:
        raise UserError(f"images must be square, got {h}x{w}")
    stack = repeating_stack(cfg.model.widths, cfg.model.blocks_per_stage)
    if builtin and h % stack.downsampling:
        raise UserError(f"image size {h} is not divisible by 2**len(model.widths) = {stack.downsampling}")
    return ModelParts(in_channels=c, image_size=h, stack=stack, dense=tuple(cfg.model.dense), dataset_size=len(data))


def make_model(cfg: Config, data: GroundTruthData, encoder: Network | None = None, decoder: Network | None = None,
               *, record: bool = False) -> LatentModel:
    """The model of a finished config (config.resolve / resume / load), freshly initialised from torch's RNG;
    `encoder` / `decoder` are your own networks (see `user_networks` for `record`)."""
    if cfg.model.num_latents is None:
        raise ValueError("make_model needs a finished config (config.resolve fills model.num_latents)")
    own_encoder, own_decoder = user_networks(cfg, encoder, decoder, record=record)
    try:
        parts = model_parts(cfg, data, builtin=own_encoder is None or own_decoder is None)
        return build_model(cfg.model.name, parts, cfg.model.num_latents, encoder=own_encoder,
                           decoder=own_decoder, **cfg.model.hyper)
    except (TypeError, ValueError) as e:
        raise UserError(f"cannot build {cfg.model.name}: {e}") from None


def set_threads(n: int) -> int:
    """Use `n` torch threads (0: the free cores, threads.choose_threads); returns the number set."""
    from .threads import choose_threads

    chosen = choose_threads(n)
    torch.set_num_threads(chosen)
    return chosen


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
