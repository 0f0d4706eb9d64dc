"""AE: a plain autoencoder, the continuous baseline. Loss = BCE; no decay by default."""

from __future__ import annotations

from torch import nn

from ..latents import ContinuousLatent
from .base import Autoencoder
from .registry import ModelParts, register


@register("ae", weight_decay=0.0)
def build_ae(parts: ModelParts, num_latents: int, **_: object) -> nn.Module:
    latent = ContinuousLatent(num_latents)
    encoder, decoder = parts.make(latent.num_inputs, num_latents)
    return Autoencoder(encoder, latent, decoder, {"bce": 1.0})
