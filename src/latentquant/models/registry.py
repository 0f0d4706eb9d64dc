"""The model registry: name -> builder, with each model's own default hyperparameters.

tests/test_registry.py runs one suite over `model_names()` (both tables), so a model is tested the moment it
is registered.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from torch import nn

from ..nets import PAPER_STACK, ConvStack, CriticEncoder, ImageEncoder, StyleDecoder


@dataclass(frozen=True)
class ModelParts:
    """How to build the encoder and decoder for a given image shape and architecture."""

    in_channels: int = 3
    image_size: int = 64
    stack: ConvStack = PAPER_STACK
    dense: tuple[int, ...] = (256, 256)

    def make(self, encoder_out: int, decoder_in: int, *, critic: bool = False) -> tuple[ImageEncoder, StyleDecoder]:
        """Encoder and decoder; `critic` adds the WGAN value head to the encoder (a GAN's decoder is its generator)."""
        encoder = (CriticEncoder if critic else ImageEncoder)(
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
    train: dict[str, object] = field(default_factory=dict)  # training settings of the family (GAN: lr, batch)


MODELS: dict[str, ModelEntry] = {}
GAN_MODELS: dict[str, ModelEntry] = {}
"""GANs train with their own loop (gan.py) and two optimizers, so they live apart from the AE suite."""


def register(name: str, *, table: dict[str, ModelEntry] | None = None, train: dict[str, object] | None = None,
             **defaults: object) -> Callable:
    """Register a builder `build(parts, num_latents, **hyperparameters) -> nn.Module` under `name`."""
    table = MODELS if table is None else table

    def wrap(build: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in MODELS or name in GAN_MODELS:
            raise ValueError(f"model {name!r} is registered twice")
        table[name] = ModelEntry(name, build, dict(defaults), dict(train or {}))
        return build

    return wrap


def model_names() -> list[str]:
    """Every registered model, AE family and GANs: what `model=` accepts."""
    return sorted([*MODELS, *GAN_MODELS])


def lookup(name: str) -> ModelEntry:
    """The entry of an AE-family or GAN model."""
    entry = MODELS.get(name) or GAN_MODELS.get(name)
    if entry is None:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(model_names())}")
    return entry


def _build(table: dict[str, ModelEntry], name: str, parts: ModelParts, num_latents: int, **hyper: object) -> nn.Module:
    if name not in table:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(sorted(table))}")
    entry = table[name]
    return entry.build(parts, num_latents, **{**entry.defaults, **hyper})


def build_model(name: str, parts: ModelParts, num_latents: int, **hyperparameters: object) -> nn.Module:
    return _build(MODELS, name, parts, num_latents, **hyperparameters)


def build_gan(name: str, parts: ModelParts, num_latents: int, **hyperparameters: object) -> nn.Module:
    return _build(GAN_MODELS, name, parts, num_latents, **hyperparameters)
