"""The model registry: one table, name -> ModelSpec.

A model is a builder `build(parts, num_latents, *, <hyperparameters>) -> LatentModel`. Its keyword-only
parameters are the model's hyperparameters (the schema `model.*` keys are checked against) and their
defaults; `register` may override defaults per variant (the QLAE ablations) or fix a parameter so that it is
not a key at all (`quantized` of the GANs). tests/test_registry.py runs one suite over `list_models()`, so a
model is tested the moment it is registered.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from ..modules.networks import PAPER_STACK, ConvStack, CriticEncoder, ImageEncoder, StyleDecoder
from .base import LatentModel


@dataclass(frozen=True)
class ModelParts:
    """What a builder needs besides hyperparameters: image shape, architecture, and the dataset's size."""

    in_channels: int = 3
    image_size: int = 64
    stack: ConvStack = PAPER_STACK
    dense: tuple[int, ...] = (256, 256)
    dataset_size: int | None = None  # β-TCVAE's minibatch-weighted estimator needs N

    def encoder(self, out_features: int) -> ImageEncoder:
        return ImageEncoder(out_features, in_channels=self.in_channels, image_size=self.image_size,
                            stack=self.stack, dense=self.dense)

    def critic(self, out_features: int) -> CriticEncoder:
        """The encoder with the WGAN value head on its trunk."""
        return CriticEncoder(out_features, in_channels=self.in_channels, image_size=self.image_size,
                             stack=self.stack, dense=self.dense)

    def decoder(self, in_features: int) -> StyleDecoder:
        return StyleDecoder(in_features, out_channels=self.in_channels, image_size=self.image_size,
                            stack=self.stack, mapping=self.dense)


@dataclass(frozen=True)
class Hyperparameter:
    name: str
    type: Any  # the builder's annotation, resolved
    default: Any


@dataclass(frozen=True)
class ModelSpec:
    name: str
    build: Callable[..., LatentModel]
    family: Literal["autoencoder", "gan"]  # selects the `<scale>-gan.yaml` preset layer, nothing else
    weight_decay: float
    hyperparameters: dict[str, Hyperparameter]
    fixed: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)  # training settings of the model (GANs: lr, batch)

    def defaults(self) -> dict[str, Any]:
        return {name: h.default for name, h in self.hyperparameters.items()}


MODELS: dict[str, ModelSpec] = {}


def _schema(build: Callable[..., LatentModel], defaults: dict[str, Any], fixed: dict[str, Any]
            ) -> dict[str, Hyperparameter]:
    params = inspect.signature(build, eval_str=True).parameters
    schema = {}
    for p in params.values():
        if p.kind is not inspect.Parameter.KEYWORD_ONLY or p.name in fixed:
            continue
        if p.default is inspect.Parameter.empty and p.name not in defaults:
            raise TypeError(f"hyperparameter {p.name!r} of {build.__name__} needs a default")
        schema[p.name] = Hyperparameter(p.name, p.annotation, defaults.get(p.name, p.default))
    unknown = set(defaults) - set(schema)
    if unknown:
        raise TypeError(f"{build.__name__} takes no hyperparameters {sorted(unknown)}")
    return schema


def register(name: str, build: Callable[..., LatentModel], *, family: Literal["autoencoder", "gan"] = "autoencoder",
             weight_decay: float, fixed: dict[str, Any] | None = None, train: dict[str, Any] | None = None,
             **defaults: Any) -> ModelSpec:
    """Register `build` under `name`, with this variant's weight decay and hyperparameter defaults."""
    if name in MODELS:
        raise ValueError(f"model {name!r} is registered twice")
    fixed = dict(fixed or {})
    spec = ModelSpec(name, build, family, float(weight_decay), _schema(build, defaults, fixed), fixed,
                     dict(train or {}))
    MODELS[name] = spec
    return spec


def list_models() -> list[str]:
    """Every registered model: what `model=` accepts."""
    return sorted(MODELS)


def get_spec(name: str) -> ModelSpec:
    spec = MODELS.get(name)
    if spec is None:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(list_models())}")
    return spec


def build_model(name: str, parts: ModelParts, num_latents: int, **hyperparameters: Any) -> LatentModel:
    """Build model `name`; hyperparameters not given take the registered defaults, unknown ones are an error."""
    spec = get_spec(name)
    unknown = set(hyperparameters) - set(spec.hyperparameters)
    if unknown:
        raise TypeError(f"model {name!r} takes no hyperparameters {sorted(unknown)}; it takes "
                        f"{', '.join(spec.hyperparameters) or 'none'}")
    return spec.build(parts, num_latents, **{**spec.defaults(), **hyperparameters, **spec.fixed})
