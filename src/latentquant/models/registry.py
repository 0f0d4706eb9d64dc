"""The model registry: name -> builder, with each model's own default hyperparameters.

One parametrized test suite runs over `MODELS`, so a model is tested the moment it is registered.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from torch import nn

from ..nets import PAPER_STACK, ConvStack, ImageEncoder, StyleDecoder


@dataclass(frozen=True)
class ModelParts:
    """How to build the encoder and decoder for a given image shape and architecture."""

    in_channels: int = 3
    image_size: int = 64
    stack: ConvStack = PAPER_STACK
    dense: tuple[int, ...] = (256, 256)

    def make(self, encoder_out: int, decoder_in: int) -> tuple[ImageEncoder, StyleDecoder]:
        encoder = ImageEncoder(
            encoder_out, in_channels=self.in_channels, image_size=self.image_size, stack=self.stack, dense=self.dense
        )
        decoder = StyleDecoder(
            decoder_in, out_channels=self.in_channels, image_size=self.image_size, stack=self.stack, mapping=self.dense
        )
        return encoder, decoder


@dataclass(frozen=True)
class ModelEntry:
    name: str
    build: Callable[..., nn.Module]
    defaults: dict[str, object] = field(default_factory=dict)


MODELS: dict[str, ModelEntry] = {}


def register(name: str, **defaults: object) -> Callable:
    """Register a builder `build(parts, num_latents, **hyperparameters) -> nn.Module` under `name`."""

    def wrap(build: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in MODELS:
            raise ValueError(f"model {name!r} is registered twice")
        MODELS[name] = ModelEntry(name, build, dict(defaults))
        return build

    return wrap


def build_model(name: str, parts: ModelParts, num_latents: int, **hyperparameters: object) -> nn.Module:
    if name not in MODELS:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(sorted(MODELS))}")
    entry = MODELS[name]
    return entry.build(parts, num_latents, **{**entry.defaults, **hyperparameters})
