"""AE: a plain autoencoder, the continuous baseline. Loss = BCE; no decay by default."""

from __future__ import annotations

from torch import nn

from ..latents import BioLatent, ContinuousLatent
from .base import Autoencoder
from .registry import ModelParts, register


@register("ae", weight_decay=0.0)
def build_ae(parts: ModelParts, num_latents: int, **_: object) -> nn.Module:
    latent = ContinuousLatent(num_latents)
    encoder, decoder = parts.make(latent.num_inputs, num_latents)
    return Autoencoder(encoder, latent, decoder, {"bce": 1.0})


@register("bio_ae", weight_decay=1e-4, lambda_nonneg=1.0, lambda_activity=0.1)
def build_bio_ae(parts: ModelParts, num_latents: int, *, lambda_nonneg: float = 1.0, lambda_activity: float = 0.1,
                 **_: object) -> nn.Module:
    """BioAE: non-negative, sparse activations (a hinge on negative values and their mean square)."""
    latent = BioLatent(num_latents)
    encoder, decoder = parts.make(latent.num_inputs, num_latents)
    return Autoencoder(encoder, latent, decoder,
                       {"bce": 1.0, "nonnegativity": lambda_nonneg, "activity": lambda_activity})
