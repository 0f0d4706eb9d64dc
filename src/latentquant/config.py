"""Typed run configuration: dataclasses, YAML presets and `key=value` overrides.

Resolution order, later wins: dataclass defaults -> `presets/<preset>.yaml` (scale: cpu or paper) ->
the model's registered defaults (its objective weights, a GAN's lr and batch) -> for GANs,
`presets/<preset>-gan.yaml` if present (their step budget at that scale) -> `presets/<model>-<dataset>.yaml`
if present (the paper's per-dataset tuned values) -> the user's `key=value` overrides.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from .errors import UserError


@dataclass
class ModelConfig:
    name: str = "qlae"
    num_latents: int | None = None  # None: twice the number of factors, as the paper does
    num_values: int = 10
    learn_values: bool = True
    widths: list[int] = field(default_factory=lambda: [32, 64, 128, 256])
    blocks_per_stage: int = 3
    dense: list[int] = field(default_factory=lambda: [256, 256])
    weight_decay: float | None = None  # None: the model's registered default
    lambda_quant: float | None = None
    lambda_commit: float | None = None
    global_codebook: bool = False  # qlae_global: one codebook shared by all latents
    beta: float | None = None  # beta_vae
    lambda_mi: float | None = None  # beta_tcvae
    lambda_tc: float | None = None
    lambda_dwkl: float | None = None
    lambda_nonneg: float | None = None  # bio_ae
    lambda_activity: float | None = None
    lambda_gp: float | None = None  # GANs: gradient penalty, latent prediction, critic value
    lambda_latent: float | None = None
    lambda_value: float | None = None
    num_embeddings: int = 512  # vqvae
    embedding_dim: int = 64


@dataclass
class DataConfig:
    name: str = "shapes3d"
    path: str | None = None  # None: the procedural look-alike
    image_size: int = 64
    seed: int = 20230228  # fixes the evaluation subset, as the reference's shuffle seed
    num_eval: int = 10_000


@dataclass
class TrainConfig:
    steps: int = 200_000
    batch_size: int = 128
    lr: float = 1e-3
    clip: float = 1.0
    log_every: int = 50
    eval_every: int = 5_000  # plus at step 0, at the end, and (eval_early) every eval_every/10 before it
    eval_early: bool = True
    checkpoint_every: int = 5_000
    keep_checkpoints: int = 2
    threads: int = 0  # 0: all cores
    device: str = "cpu"
    channels_last: bool = True
    compile: bool = False  # torch.compile the loss (minutes of compilation; pays off on long runs)
    fused: bool = False  # one fused AdamW kernel per group (same update up to float rounding)


@dataclass
class EvalConfig:
    figures: bool = True
    batch_size: int = 500
    traversal_values: int = 10
    suite: bool = False  # at the last step also DCI, MIG, SAP, DCI-ES and FactorVAE, as `latentquant eval` does
    dci_predictor: str = "gbt"  # gbt (disentanglement_lib) or forest (Tripod; ~8x faster)
    factorvae_votes: int = 10_000


@dataclass
class Config:
    preset: str = "cpu"
    seed: int = 100
    run_dir: str | None = None  # None: runs/<model>-<data>-seed<seed>-<time>
    resume: str | None = None
    progress: bool = True
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


SHORTHANDS = {"model": "model.name", "data": "data.name"}
"""`model=ae` is `model.name=ae`: the common choices read as in the paper's configs."""


def preset_names() -> list[str]:
    return sorted(p.name[:-5] for p in resources.files("latentquant.presets").iterdir() if p.name.endswith(".yaml"))


def _read_preset(name: str) -> dict[str, Any] | None:
    ref = resources.files("latentquant.presets") / f"{name}.yaml"
    if not ref.is_file():
        return None
    return yaml.safe_load(ref.read_text()) or {}


def parse_overrides(args: list[str]) -> dict[str, Any]:
    """`key=value` strings -> {dotted key: YAML-parsed value}."""
    out: dict[str, Any] = {}
    for arg in args:
        key, sep, raw = arg.partition("=")
        if not sep or not key:
            raise UserError(f"expected key=value, got {arg!r}")
        key = SHORTHANDS.get(key, key)
        try:
            out[key] = yaml.safe_load(raw) if raw != "" else None
        except yaml.YAMLError:
            out[key] = raw
        if isinstance(out[key], str):
            out[key] = _number(raw)
        if isinstance(out[key], str | int | float | bool | list) or out[key] is None:
            continue
        out[key] = raw
    return out


def _number(raw: str) -> str | float:
    """YAML 1.1 reads `2e-4` (no dot) as a string; on the command line it is meant as a number."""
    try:
        return float(raw) if any(c.isdigit() for c in raw) and raw.strip().lower() not in ("nan", "inf") else raw
    except ValueError:
        return raw


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for k, v in tree.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            flat.update(_flatten(v, key + "."))
        else:
            flat[key] = v
    return flat


def _coerce(key: str, value: Any, annotation: Any) -> Any:
    """Check `value` against a field's type; ints are accepted for floats, nothing else is converted."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(annotation)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(key, value, option)
            except UserError as e:
                errors.append(e)
        raise errors[0]
    if origin is list:
        (item,) = typing.get_args(annotation)
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = [value]
        if not isinstance(value, list):
            raise UserError(f"{key} expects a list, got {value!r}")
        return [_coerce(f"{key}[{i}]", v, item) for i, v in enumerate(value)]
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if annotation is bool and not isinstance(value, bool):
        raise UserError(f"{key} expects true or false, got {value!r}")
    if annotation is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise UserError(f"{key} expects an integer, got {value!r}")
    if annotation is float and not isinstance(value, float):
        raise UserError(f"{key} expects a number, got {value!r}")
    if annotation is str and not isinstance(value, str):
        value = str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value
        if not isinstance(value, str):
            raise UserError(f"{key} expects a string, got {value!r}")
    return value


def _fields(obj: Any) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(obj)}


def set_key(cfg: Config, key: str, value: Any) -> None:
    """Set a dotted key with type checking; unknown keys name the keys that exist."""
    *path, last = key.split(".")
    node: Any = cfg
    for i, part in enumerate(path):
        fields = _fields(node)
        if part not in fields or not dataclasses.is_dataclass(getattr(node, part)):
            raise UserError(f"unknown config key {key!r}: no section {'.'.join(path[: i + 1])!r}")
        node = getattr(node, part)
    fields = _fields(node)
    if last not in fields or dataclasses.is_dataclass(getattr(node, last)):
        section = ".".join(path)
        known = ", ".join(f"{section + '.' if section else ''}{n}" for n in fields)
        raise UserError(f"unknown config key {key!r}; known keys here: {known}")
    hints = typing.get_type_hints(type(node))
    setattr(node, last, _coerce(key, value, hints[last]))


def resolve(overrides: dict[str, Any] | list[str] | None = None) -> Config:
    """Build the full config from presets and overrides (see the module docstring for the order)."""
    if isinstance(overrides, list):
        overrides = parse_overrides(overrides)
    overrides = dict(overrides or {})
    cfg = Config()
    preset = overrides.pop("preset", cfg.preset)
    tree = _read_preset(str(preset))
    if tree is None:
        raise UserError(f"unknown preset {preset!r}; known: {', '.join(p for p in preset_names() if '-' not in p)}")
    cfg.preset = str(preset)
    layers = [_flatten(tree)]
    model = overrides.get("model.name", layers[0].get("model.name", cfg.model.name))
    data = overrides.get("data.name", layers[0].get("data.name", cfg.data.name))
    from .models import GAN_MODELS, lookup  # the registry knows each model's own defaults

    try:
        entry = lookup(model)
    except KeyError as e:
        raise UserError(e.args[0]) from None
    layers.append({f"model.{k}": v for k, v in entry.defaults.items()})
    layers.append({f"train.{k}": v for k, v in entry.train.items()})
    if model in GAN_MODELS:  # the scale's GAN schedule: five critic steps per generator step need more steps
        layers.append(_flatten(_read_preset(f"{preset}-gan") or {}))
    tuned = _read_preset(f"{model}-{data}")
    if tuned:
        layers.append(_flatten(tuned))
    layers.append(overrides)
    for layer in layers:
        for key, value in layer.items():
            set_key(cfg, key, value)
    validate(cfg)
    return cfg


def validate(cfg: Config) -> None:
    positive = {
        "train.steps": cfg.train.steps >= 0,
        "train.batch_size": cfg.train.batch_size > 0,
        "train.lr": cfg.train.lr > 0,
        "train.eval_every": cfg.train.eval_every > 0,
        "train.checkpoint_every": cfg.train.checkpoint_every > 0,
        "train.log_every": cfg.train.log_every > 0,
        "data.image_size": cfg.data.image_size > 0,
        "data.num_eval": cfg.data.num_eval > 1,
        "model.num_values": cfg.model.num_values > 0,
    }
    for key, ok in positive.items():
        if not ok:
            raise UserError(f"{key} must be positive")
    if cfg.model.num_latents is not None and cfg.model.num_latents < 1:
        raise UserError("model.num_latents must be at least 1")
    if cfg.eval.dci_predictor not in ("gbt", "forest"):
        raise UserError(f"eval.dci_predictor must be gbt or forest, got {cfg.eval.dci_predictor!r}")
    if cfg.train.device not in ("cpu", "cuda", "mps") and not cfg.train.device.startswith("cuda:"):
        raise UserError(f"train.device must be cpu, cuda, cuda:N or mps, got {cfg.train.device!r}")


def to_dict(cfg: Config) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def from_dict(tree: dict[str, Any]) -> Config:
    cfg = Config()
    for key, value in _flatten(tree).items():
        set_key(cfg, key, value)
    return cfg


def save(cfg: Config, path: Path) -> None:
    path.write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))


def load(path: Path) -> Config:
    try:
        tree = yaml.safe_load(Path(path).read_text())
    except FileNotFoundError:
        raise UserError(f"no config.yaml in {Path(path).parent}: not a latentquant run directory") from None
    return from_dict(tree or {})
