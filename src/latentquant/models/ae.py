"""AE: a plain autoencoder, the continuous baseline (loss = BCE, no decay); BioAE: non-negative, sparse."""

from __future__ import annotations

from ..modules.latents import BioLatent, ContinuousLatent
from .autoencoder import Autoencoder
from .registry import ModelParts, register


def build_ae(parts: ModelParts, num_latents: int) -> Autoencoder:
    latent = ContinuousLatent(num_latents)
    return Autoencoder(parts.encoder(latent.num_inputs), latent, parts.decoder(num_latents), {"bce": 1.0})


def build_bio_ae(parts: ModelParts, num_latents: int, *, lambda_nonneg: float = 1.0,
                 lambda_activity: float = 0.1) -> Autoencoder:
    """BioAE: a hinge on negative activations and their mean square."""
    latent = BioLatent(num_latents)
    return Autoencoder(parts.encoder(latent.num_inputs), latent, parts.decoder(num_latents),
                       {"bce": 1.0, "nonnegativity": lambda_nonneg, "activity": lambda_activity})


register("ae", build_ae, weight_decay=0.0)
register("bio_ae", build_bio_ae, weight_decay=1e-4)
