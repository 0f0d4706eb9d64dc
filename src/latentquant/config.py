"""Typed run configuration: dataclasses, YAML presets and `key=value` overrides.

Resolution order, later wins: dataclass defaults -> `presets/<preset>.yaml` (scale: cpu or paper) ->
the model's registered defaults (its hyperparameters, weight decay, a GAN's lr and batch) -> for GANs,
`presets/<preset>-gan.yaml` if present (their step budget at that scale) -> `presets/<model>-<dataset>.yaml`
if present (the paper's per-dataset tuned values) -> the user's `key=value` overrides.

`model.*` holds the architecture keys every model shares and the chosen model's own hyperparameters, whose
names, types and defaults are its builder's keyword-only parameters (models/registry.py): a key the model
does not take is an error naming the keys it does take. `resolve()` and `resume()` return a finished config:
`model.num_latents` and every hyperparameter are filled in before anything runs.
"""

from __future__ import annotations

import dataclasses
import functools
import math
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
    widths: list[int] = field(default_factory=lambda: [32, 64, 128, 256])
    blocks_per_stage: int = 3
    dense: list[int] = field(default_factory=lambda: [256, 256])
    weight_decay: float | None = None  # None: the model's registered default
    # Your own networks (latentquant.fit(cfg, encoder=..., decoder=...)): their class, recorded so that a resume,
    # `eval` or `load_run` without them is refused instead of building the built-in pair. None: built in.
    encoder: str | None = None
    decoder: str | None = None
    # The chosen model's own hyperparameters (model.<key> on the command line and in config.yaml).
    hyper: dict[str, Any] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        # cfg.model.lambda_gp reads a hyperparameter as cfg.model.widths reads a shared key.
        hyper = self.__dict__.get("hyper") or {}
        if name in hyper:
            return hyper[name]
        raise AttributeError(f"model {self.__dict__.get('name')!r} has no key {name!r}")


@dataclass
class DataConfig:
    name: str = "shapes3d"
    path: str | None = None  # None: the procedural look-alike
    image_size: int = 64
    seed: int = 20230228  # fixes the evaluation subset, as the reference's shuffle seed
    num_eval: int = 10_000
    # 0: evaluate on a subset of all images (the reference's protocol); f > 0: hold out that fraction (drawn
    # from split_seed), train on the rest and evaluate on (up to num_eval of) the held-out images.
    eval_fraction: float = 0.0
    split_seed: int = 0
    channels: int | None = None  # 1 or 3; None: what the data has (training records it here)
    # Your own data only (data=images, data=arrays; docs/your-data.md):
    key: str | None = None  # arrays: the images' array name (None: the file's only array)
    factors_key: str | None = None  # arrays: an (N, K) array of labels in the same file
    labels: str | None = None  # a labels CSV (default for images: <folder>/factors.csv when it exists)


@dataclass
class TrainConfig:
    steps: int = 200_000
    batch_size: int = 128
    lr: float = 1e-3
    # Both schedules start with a linear warm-up over `warmup` steps. constant: then lr, falling linearly to 0
    # over the last `cooldown` fraction of `steps` (warm-up, stable, decay); cosine: half a cosine to 0 at `steps`
    schedule: str = "constant"
    warmup: int = 0
    cooldown: float = 0.0
    clip: float = 1.0
    log_every: int = 50
    eval_every: int = 5_000  # plus at step 0, at the end, and (eval_early) every eval_every/10 before it
    eval_early: bool = True
    checkpoint_every: int = 5_000
    keep_checkpoints: int = 2
    threads: int = 0  # 0: the cores other processes leave free at the start (config.yaml then records the count)
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
    protocol: str = "qlae"  # whose conventions the metrics follow: qlae, tripod, factorqvae or dlib (docs/metrics.md)
    dci_predictor: str | None = None  # None: the protocol's (gbt; forest under tripod)
    nmi_floor: str = "none"  # none, or permutation: InfoMEC's significance floor (docs/metrics.md)
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
    # What resuming changed, in order: {"step": the step from which it holds, "<key>": new value, ...}.
    changes: list[dict[str, Any]] = field(default_factory=list)


# Keys a resume may change: how long and how often, where and how fast, the learning rate from then on, and
# everything about evaluation. Everything else fixes what the checkpoints hold or which batches are drawn.
RESUMABLE_KEYS = ("train.steps", "train.eval_every", "train.eval_early", "train.checkpoint_every",
                  "train.keep_checkpoints", "train.log_every", "train.threads", "train.device", "train.lr",
                  "train.compile", "train.fused", "train.channels_last", "progress")
RESUMABLE_SECTIONS = ("eval.",)


SCHEDULES = ("constant", "cosine")

SHORTHANDS = {"model": "model.name", "data": "data.name"}
"""`model=ae` is `model.name=ae`: the common choices read as in the paper's configs."""


def preset_names() -> list[str]:
    return list(_preset_files())


@functools.cache
def _preset_files() -> tuple[str, ...]:
    # The package's own files do not change while it runs; resolve() asks on every call (sweeps, tests).
    return tuple(sorted(p.name[:-5] for p in resources.files("latentquant.presets").iterdir()
                        if p.name.endswith(".yaml")))


def scale_presets() -> list[str]:
    """The presets `preset=` takes (quick, cpu, cpu-long, paper): not a scale's GAN budget (`<scale>-gan`) nor
    a tuned `<model>-<dataset>` file."""
    from .data.catalog import CATALOG

    return [p for p in preset_names() if not p.endswith("-gan") and p.rsplit("-", 1)[-1] not in CATALOG]


def _read_preset(name: str) -> dict[str, Any] | None:
    ref = resources.files("latentquant.presets") / f"{name}.yaml"
    if not ref.is_file():
        return None
    return yaml.safe_load(ref.read_text()) or {}


def keys_help(preset: str = "cpu") -> str:
    """Every shared config key with its value under ``preset`` (the dataclass default where the preset is silent):
    what `latentquant train --help` lists. Reads no model registry, so `--help` stays fast (no torch import)."""
    values = _flatten(to_dict(Config()))  # to_dict leaves out the empty hyperparameters and changes
    values.update(_flatten(_read_preset(preset) or {}))
    width = max(map(len, values))
    lines = [f"config keys (key=value), with the values `latentquant train` uses (preset={preset}):"]
    for key, value in values.items():
        shown = "null" if value is None else yaml.safe_dump(value, default_flow_style=True).removesuffix("...\n")
        lines.append(f"  {key:<{width}}  {shown.strip()}")
    lines += [
        f"  {'model.<key>':<{width}}  the chosen model's own hyperparameters, filled from its registered",
        f"  {'':<{width}}  defaults and per-dataset presets; a wrong key names the keys it takes (docs/models.md)",
        "",
        "model=<name> and data=<name> are short for model.name and data.name; preset=quick is a 2-minute smoke",
        "test, preset=cpu-long 32x32 images for under an hour, preset=paper the paper's scale.",
        "Presets: src/latentquant/presets/ (quick, cpu, cpu-long and paper.yaml, <scale>-gan.yaml for the GANs'",
        "step budget, and the tuned <model>-<dataset>.yaml files).",
    ]
    return "\n".join(lines)


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


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"train": {"lr": 1e-3}} -> {"train.lr": 1e-3}; lists stay values."""
    return _flatten(tree, prefix)


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


def _model_spec(name: str):
    from .models import get_spec  # the registry is the schema of `model.*`; imported late (it imports torch)

    try:
        return get_spec(name)
    except KeyError as e:
        raise UserError(e.args[0]) from None


def _set_hyper(cfg: Config, key: str, value: Any) -> None:
    name = key.split(".", 1)[1]
    spec = _model_spec(cfg.model.name)
    if name not in spec.hyperparameters:
        common = [f.name for f in dataclasses.fields(ModelConfig) if f.name != "hyper"]
        own = ", ".join(f"model.{k}" for k in spec.hyperparameters) or "none"
        raise UserError(f"model {cfg.model.name} takes no key {key!r}; its own keys: {own}; every model's: "
                        f"{', '.join('model.' + k for k in common)}")
    cfg.model.hyper[name] = _coerce(key, value, spec.hyperparameters[name].type)


def set_key(cfg: Config, key: str, value: Any) -> None:
    """Set a dotted key with type checking; unknown keys name the keys that exist."""
    if key.startswith("model.") and key.count(".") == 1 and key[6:] not in _fields(ModelConfig):
        _set_hyper(cfg, key, value)
        return
    if key == "model.hyper":
        raise UserError("unknown config key 'model.hyper'; set a hyperparameter as model.<name>=value")
    if key == "model.name":
        name = _coerce(key, value, str)
        _model_spec(name)
        if name != cfg.model.name:
            cfg.model.hyper = {}  # another model's hyperparameters mean nothing to this one
        cfg.model.name = name
        return
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
    """The finished config from presets and overrides (see the module docstring for the order)."""
    if isinstance(overrides, list):
        overrides = parse_overrides(overrides)
    overrides = dict(overrides or {})
    if "resume" in overrides:
        raise UserError("resume= continues a run: use config.resume(run_dir, overrides)")
    cfg = Config()
    preset = overrides.pop("preset", cfg.preset)
    tree = _read_preset(str(preset)) if str(preset) in scale_presets() else None
    if tree is None:
        raise UserError(f"unknown preset {preset!r}; known: {', '.join(scale_presets())}")
    cfg.preset = str(preset)
    layers = [_flatten(tree)]
    model = overrides.get("model.name", layers[0].get("model.name", cfg.model.name))
    data = overrides.get("data.name", layers[0].get("data.name", cfg.data.name))
    set_key(cfg, "model.name", model)
    spec = _model_spec(cfg.model.name)
    layers.append({"model.weight_decay": spec.weight_decay, **{f"model.{k}": v for k, v in spec.defaults().items()}})
    layers.append({f"train.{k}": v for k, v in spec.train.items()})
    if spec.family == "gan":  # the scale's GAN schedule: five critic steps per generator step need more steps
        layers.append(_flatten(_read_preset(f"{preset}-gan") or {}))
    tuned = _read_preset(f"{model}-{data}")
    if tuned:
        layers.append(_flatten(tuned))
    layers.append(overrides)
    for layer in layers:
        for key, value in layer.items():
            if key != "model.name":  # chosen above, before any hyperparameter could be checked against it
                set_key(cfg, key, value)
    finish(cfg)
    return cfg


def cooldown_steps(cfg: TrainConfig) -> int:
    """How many of the last updates a constant schedule's rate falls over (the cosine falls all the way)."""
    return round(cfg.cooldown * cfg.steps) if cfg.schedule == "constant" else 0


def finish(cfg: Config) -> None:
    """Fill what the config leaves to the model and the data, then check every value."""
    spec = _model_spec(cfg.model.name)
    if cfg.model.weight_decay is None:
        cfg.model.weight_decay = spec.weight_decay
    cfg.model.hyper = {**spec.defaults(), **cfg.model.hyper}
    if cfg.model.num_latents is None:
        from .data.catalog import CATALOG  # factor counts without loading a single image

        info = CATALOG.get(cfg.data.name)
        if info is None:
            raise UserError(f"unknown dataset {cfg.data.name!r}; known datasets: {', '.join(sorted(CATALOG))}")
        cfg.model.num_latents = info.default_latents or 2 * len(info.factor_names)
    validate(cfg)


def resume(run_dir: str | Path, overrides: dict[str, Any] | list[str] | None = None) -> Config:
    """The saved config of the run in `run_dir` with the user's overrides applied.

    Only RESUMABLE_KEYS (and eval.*) may change; anything else is refused with one line. The changed keys are
    appended to `cfg.changes` with `step: None`, which the run directory fills in with the checkpoint's step.
    """
    if isinstance(overrides, list):
        overrides = parse_overrides(overrides)
    overrides = {k: v for k, v in (overrides or {}).items() if k != "resume"}
    path = Path(run_dir).expanduser()
    if not path.is_dir():
        raise UserError(f"cannot resume {path}: no such run directory")
    saved = load(path / "config.yaml")
    if "preset" in overrides and overrides.pop("preset") != saved.preset:
        raise UserError(f"cannot change preset on resume: {path} was resolved with preset={saved.preset}")
    changed: dict[str, Any] = {}
    before = _flatten(to_dict(saved))
    for key, value in overrides.items():
        if key == "run_dir":
            if Path(str(value)).expanduser() != path:
                raise UserError(f"cannot change run_dir on resume: the run lives in {path}")
            continue
        if key not in RESUMABLE_KEYS and not key.startswith(RESUMABLE_SECTIONS):
            probe = Config()
            set_key(probe, "model.name", saved.model.name)
            set_key(probe, key, value)  # an unknown key gets its own message first
            if _flatten(to_dict(probe)).get(key) == before.get(key):
                continue  # restating the saved value changes nothing
            raise UserError(f"cannot change {key} on resume: it fixes what {path}'s checkpoints hold or which "
                            f"batches they saw (resumable: {', '.join(RESUMABLE_KEYS)}, eval.*); start a new run "
                            "instead")
        set_key(saved, key, value)
        new = _flatten(to_dict(saved)).get(key)
        if new != before.get(key):
            changed[key] = new
    validate(saved)
    if changed:
        saved.changes.append({"step": None, **changed})
    saved.resume, saved.run_dir = str(path), str(path)
    return saved


def validate(cfg: Config) -> None:
    """Every value in range, so that nothing fails (or silently misbehaves) after the run directory exists."""
    if cfg.train.steps < 0:
        raise UserError("train.steps must be 0 or more")
    positive = {
        "train.batch_size": cfg.train.batch_size > 0,
        "train.eval_every": cfg.train.eval_every > 0,
        "train.checkpoint_every": cfg.train.checkpoint_every > 0,
        "train.keep_checkpoints": cfg.train.keep_checkpoints > 0,
        "train.log_every": cfg.train.log_every > 0,
        "data.image_size": cfg.data.image_size > 0,
        "data.num_eval": cfg.data.num_eval > 1,
        "eval.batch_size": cfg.eval.batch_size > 0,
        "eval.traversal_values": cfg.eval.traversal_values > 0,
        "model.blocks_per_stage": cfg.model.blocks_per_stage > 0,
    }
    for key, ok in positive.items():
        if not ok:
            raise UserError(f"{key} must be positive")
    if not (math.isfinite(cfg.train.lr) and cfg.train.lr > 0):
        raise UserError(f"train.lr must be a finite positive number, got {cfg.train.lr}")
    if cfg.train.schedule not in SCHEDULES:
        raise UserError(f"train.schedule must be one of {', '.join(SCHEDULES)}, got {cfg.train.schedule!r}")
    if cfg.train.warmup < 0:
        raise UserError(f"train.warmup must be 0 or more steps, got {cfg.train.warmup}")
    if not (math.isfinite(cfg.train.cooldown) and 0 <= cfg.train.cooldown <= 1):
        raise UserError(f"train.cooldown must be a fraction of train.steps in [0, 1], got {cfg.train.cooldown}")
    if cfg.train.warmup + cooldown_steps(cfg.train) > cfg.train.steps:
        raise UserError(f"train.warmup ({cfg.train.warmup}) and the cool-down ({cooldown_steps(cfg.train)} steps) "
                        f"must fit in train.steps ({cfg.train.steps})")
    if not (math.isfinite(cfg.train.clip) and cfg.train.clip >= 0):
        raise UserError(f"train.clip must be a finite number >= 0 (0: no clipping), got {cfg.train.clip}")
    if cfg.train.threads < 0:
        raise UserError(f"train.threads must be 0 (the free cores) or more, got {cfg.train.threads}")
    if cfg.eval.factorvae_votes < 0:
        raise UserError(f"eval.factorvae_votes must be 0 (skip) or more, got {cfg.eval.factorvae_votes}")
    if not cfg.model.widths or min(cfg.model.widths) < 1 or not cfg.model.dense or min(cfg.model.dense) < 1:
        raise UserError("model.widths and model.dense must be non-empty lists of positive integers")
    if cfg.model.weight_decay is not None and not (math.isfinite(cfg.model.weight_decay)
                                                   and cfg.model.weight_decay >= 0):
        raise UserError(f"model.weight_decay must be a finite number >= 0, got {cfg.model.weight_decay}")
    for key, value in cfg.model.hyper.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise UserError(f"model.{key} must be finite, got {value}")
        if isinstance(value, int) and not isinstance(value, bool) and value < 1:
            raise UserError(f"model.{key} must be positive, got {value}")
    if cfg.model.num_latents is not None and cfg.model.num_latents < 1:
        raise UserError("model.num_latents must be at least 1")
    check_eval_choices(cfg.eval)
    check_data(cfg.data)
    if cfg.train.device not in ("cpu", "cuda", "mps") and not cfg.train.device.startswith("cuda:"):
        raise UserError(f"train.device must be cpu, cuda, cuda:N or mps, got {cfg.train.device!r}")


USER_DATA_KEYS = ("key", "factors_key", "labels")


def check_data(cfg: DataConfig) -> None:
    """The data keys that can be checked without reading a file."""
    from .data.catalog import USER_DATA

    if not (math.isfinite(cfg.eval_fraction) and 0.0 <= cfg.eval_fraction < 1.0):
        raise UserError(f"data.eval_fraction must be in [0, 1) (0: evaluate on a subset of all images), got "
                        f"{cfg.eval_fraction}")
    if cfg.channels not in (None, 1, 3):
        raise UserError(f"data.channels must be 1, 3 or null (what the data has), got {cfg.channels}")
    if cfg.name in USER_DATA:
        if cfg.path is None:
            what = "a folder of images" if cfg.name == "images" else "an .npz, .h5 or .npy file"
            raise UserError(f"data={cfg.name} needs data.path=<{what}>")
        if cfg.name == "images" and (cfg.key is not None or cfg.factors_key is not None):
            raise UserError("data.key and data.factors_key name arrays in a file: they apply to data=arrays")
        return
    given = [f"data.{k}" for k in USER_DATA_KEYS if getattr(cfg, k) is not None]
    if given:
        raise UserError(f"{given[0]} applies to your own data (data=images or data=arrays), not to {cfg.name}")


def check_eval_choices(cfg: EvalConfig) -> None:
    """UserError naming a protocol, DCI learner or NMI floor that does not exist."""
    import typing

    # Imported here: the metrics pull in NumPy and SciPy, which `--help` and config parsing do not need.
    from .metrics.dci import Predictor
    from .metrics.protocols import PROTOCOLS

    predictors = typing.get_args(Predictor)
    if cfg.dci_predictor is not None and cfg.dci_predictor not in predictors:
        raise UserError(f"eval.dci_predictor must be one of {', '.join(predictors)}, got {cfg.dci_predictor!r}")
    if cfg.protocol not in PROTOCOLS:
        raise UserError(f"eval.protocol must be one of {', '.join(PROTOCOLS)}, got {cfg.protocol!r}")
    if cfg.nmi_floor not in ("none", "permutation"):
        raise UserError(f"eval.nmi_floor must be none or permutation, got {cfg.nmi_floor!r}")


def to_dict(cfg: Config) -> dict[str, Any]:
    """The config as plain data; the model's hyperparameters sit in `model` beside the shared keys."""
    tree = dataclasses.asdict(cfg)
    hyper = tree["model"].pop("hyper")
    tree["model"].update(hyper)
    if not tree["changes"]:
        del tree["changes"]
    return tree


def from_dict(tree: dict[str, Any], *, saved: bool = False) -> Config:
    """A config from plain data. `saved`: a run's config.yaml, where a model key the model does not take is
    dropped (config files written before hyperparameters were per model hold every model's keys, which the
    builders then ignored) instead of refused."""
    cfg = Config()
    flat = _flatten(tree)
    if "model.name" in flat:
        set_key(cfg, "model.name", flat.pop("model.name"))
    spec = _model_spec(cfg.model.name)
    for key, value in flat.items():
        if saved and key.startswith("model.") and key[6:] not in _fields(ModelConfig) \
                and key[6:] not in spec.hyperparameters:
            continue
        set_key(cfg, key, value)
    return cfg


def save(cfg: Config, path: Path) -> None:
    from .checkpoint import atomic_write_text

    atomic_write_text(Path(path), yaml.safe_dump(to_dict(cfg), sort_keys=False))


def load(path: Path) -> Config:
    """A run's config.yaml, finished (old files may leave hyperparameters to the model's defaults)."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise UserError(f"no config.yaml in {path.parent}: not a latentquant run directory") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"cannot read {path}: {getattr(e, 'strerror', None) or e}") from None
    try:
        tree = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise UserError(f"{path} is not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(tree, dict) or not tree:
        raise UserError(f"{path} is empty or not a mapping: not a latentquant run's config")
    try:
        cfg = from_dict(tree, saved=True)
        finish(cfg)
    except UserError as e:
        raise UserError(f"{path}: {e}") from None
    return cfg
