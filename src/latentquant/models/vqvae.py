"""VQ-VAE with the reference's sizes: 512 shared 64-d embeddings, one per latent slot; λ 1 / 0.25.

Evaluated on the integer code of each slot. `vqvae_wd` is the paper's "VQ-VAE w/ weight decay" (0.01).
"""

from __future__ import annotations

from ..modules.quantizers import VectorQuantizer
from .autoencoder import Autoencoder
from .registry import ModelParts, register


def build_vqvae(parts: ModelParts, num_latents: int, *, num_embeddings: int = 512, embedding_dim: int = 64,
                lambda_quant: float = 1.0, lambda_commit: float = 0.25) -> Autoencoder:
    latent = VectorQuantizer(num_latents, num_embeddings, embedding_dim)
    weights = {"bce": 1.0, "quantization": lambda_quant, "commitment": lambda_commit}
    return Autoencoder(parts.encoder(latent.num_inputs), latent, parts.decoder(latent.num_inputs), weights)


register("vqvae", build_vqvae, weight_decay=0.0)
register("vqvae_wd", build_vqvae, weight_decay=0.01)
