"""VQ-VAE with the reference's sizes: 512 shared 64-d embeddings, one per latent slot; λ 1 / 0.25.

Evaluated on the integer code of each slot. `vqvae_wd` is the paper's "VQ-VAE w/ weight decay" (0.01).
"""

from __future__ import annotations

from torch import nn

from ..quantize import VectorQuantizer
from .base import Autoencoder
from .registry import ModelParts, register


def _build(parts: ModelParts, num_latents: int, *, num_embeddings: int = 512, embedding_dim: int = 64,
           lambda_quant: float = 1.0, lambda_commit: float = 0.25, **_: object) -> nn.Module:
    latent = VectorQuantizer(num_latents, num_embeddings, embedding_dim)
    encoder, decoder = parts.make(latent.num_inputs, latent.num_inputs)
    weights = {"bce": 1.0, "quantization": lambda_quant, "commitment": lambda_commit}
    return Autoencoder(encoder, latent, decoder, weights)


register("vqvae", weight_decay=0.0, lambda_quant=1.0, lambda_commit=0.25)(_build)
register("vqvae_wd", weight_decay=0.01, lambda_quant=1.0, lambda_commit=0.25)(_build)
