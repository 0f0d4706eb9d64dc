"""The model registry: one table, name -> ModelSpec.

A model is a builder `build(parts, num_latents, *, <hyperparameters>) -> LatentModel`. Its keyword-only
parameters are the model's hyperparameters (the schema `model.*` keys are checked against) and their
defaults; `register` may override defaults per variant (the QLAE ablations) or fix a parameter so that it is
not a key at all (`quantized` of the GANs). Every autoencoder-family model also takes the composable batch
terms `klm`, `nhp` and `tc` (weights, default 0 = off; Autoencoder.add_terms), which its builder never sees
and a variant may default (Tripod). tests/test_registry.py runs one suite over `list_models()`, so a
model is tested the moment it is registered.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import nn

from ..modules.networks import PAPER_STACK, ConvStack, CriticEncoder, ImageEncoder, StyleDecoder
from .autoencoder import COMPOSABLE_TERMS, Autoencoder
from .base import LatentModel


@dataclass(frozen=True)
class ModelParts:
    """What a builder needs besides hyperparameters: image shape, architecture, and the dataset's size.

    ``user_encoder`` / ``user_decoder``: your own networks, which ``encoder()`` / ``decoder()`` then return
    instead of the built-in pair once their shapes are checked: the encoder maps (B, C, H, W) images in [0, 1]
    to (B, latent.num_inputs), the decoder maps (B, D) to logits (B, C, H, W).
    """

    in_channels: int = 3
    image_size: int = 64
    stack: ConvStack = PAPER_STACK
    dense: tuple[int, ...] = (256, 256)
    dataset_size: int | None = None  # β-TCVAE's minibatch-weighted estimator needs N
    user_encoder: nn.Module | None = None
    user_decoder: nn.Module | None = None

    @property
    def image_dims(self) -> tuple[int, int, int]:
        return (self.in_channels, self.image_size, self.image_size)

    def encoder(self, out_features: int) -> nn.Module:
        if self.user_encoder is not None:
            return checked_network(self.user_encoder, "encoder", self.image_dims, (out_features,),
                                   "(B, latent_module.num_inputs) for this model's latent module")
        return ImageEncoder(out_features, in_channels=self.in_channels, image_size=self.image_size,
                            stack=self.stack, dense=self.dense)

    def critic(self, out_features: int) -> CriticEncoder:
        """The encoder with the WGAN value head on its trunk."""
        if self.user_encoder is not None:
            raise ValueError("a GAN's encoder is its critic, with a value head on the trunk: give your own decoder "
                             "(the generator) only")
        return CriticEncoder(out_features, in_channels=self.in_channels, image_size=self.image_size,
                             stack=self.stack, dense=self.dense)

    def decoder(self, in_features: int) -> nn.Module:
        if self.user_decoder is not None:
            return checked_network(self.user_decoder, "decoder", (in_features,), self.image_dims,
                                   "logits (B, C, H, W) of the images")
        return StyleDecoder(in_features, out_channels=self.in_channels, image_size=self.image_size,
                            stack=self.stack, mapping=self.dense)


def _shape(dims: tuple[int, ...]) -> str:
    return "(B, " + ", ".join(map(str, dims)) + ")"


@torch.no_grad()
def checked_network(module: nn.Module, what: str, inputs: tuple[int, ...], outputs: tuple[int, ...],
                    meaning: str) -> nn.Module:
    """``module`` once a batch of two zero inputs comes out as the shape the model needs; else a ValueError that
    says which shape it gave and which was needed."""
    if not isinstance(module, nn.Module):
        raise ValueError(f"your {what} must be a torch.nn.Module, got {type(module).__name__}")
    device = next(module.parameters(), torch.empty(0)).device
    was_training = module.training
    module.eval()  # a probe of two zeros must not move batch-norm statistics
    try:
        out = module(torch.zeros(2, *inputs, device=device))
    except Exception as e:  # the user's code: whatever it raises, say which contract it failed
        raise ValueError(f"your {what} fails on a {_shape(inputs)} batch: {type(e).__name__}: {e}") from None
    finally:
        module.train(was_training)
    got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
    if got != (2, *outputs):
        shown = _shape(got[1:]) if isinstance(got, tuple) else f"a {got}"
        raise ValueError(f"your {what} maps {_shape(inputs)} to {shown}; this model needs {_shape(outputs)}: "
                         f"{meaning}")
    return module


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
    composable = {}
    if family == "autoencoder":  # a default of None leaves a term out (FactorVAE has its own discriminator)
        given = {term: defaults.pop(term, 0.0) for term in COMPOSABLE_TERMS}
        composable = {term: float(weight) for term, weight in given.items() if weight is not None}
    schema = _schema(build, defaults, fixed)
    clash = set(composable) & (set(schema) | set(fixed))
    if clash:
        raise TypeError(f"{build.__name__} takes {sorted(clash)}, the names of the composable terms")
    schema.update({term: Hyperparameter(term, float, weight) for term, weight in composable.items()})
    spec = ModelSpec(name, build, family, float(weight_decay), schema, fixed, dict(train or {}))
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


def build_model(name: str, parts: ModelParts, num_latents: int, *, encoder: nn.Module | None = None,
                decoder: nn.Module | None = None, **hyperparameters: Any) -> LatentModel:
    """Build model `name`; hyperparameters not given take the registered defaults, unknown ones are an error.

    ``encoder`` / ``decoder``: your own networks in place of the built-in pair (ModelParts has the contract).
    """
    spec = get_spec(name)
    if encoder is not None or decoder is not None:
        from dataclasses import replace

        parts = replace(parts, user_encoder=encoder if encoder is not None else parts.user_encoder,
                        user_decoder=decoder if decoder is not None else parts.user_decoder)
    unknown = set(hyperparameters) - set(spec.hyperparameters)
    if unknown:
        raise TypeError(f"model {name!r} takes no hyperparameters {sorted(unknown)}; it takes "
                        f"{', '.join(spec.hyperparameters) or 'none'}")
    chosen = {**spec.defaults(), **hyperparameters, **spec.fixed}
    terms = {term: chosen.pop(term) for term in COMPOSABLE_TERMS if term in chosen}  # only the AE family has them
    model = spec.build(parts, num_latents, **chosen)
    if any(terms.values()):
        if not isinstance(model, Autoencoder):
            raise TypeError(f"model {name!r} is not an Autoencoder, so it cannot take the terms {sorted(terms)}")
        model.add_terms(**terms)
    return model
