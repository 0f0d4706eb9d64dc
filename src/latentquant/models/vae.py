"""β-VAE and β-TCVAE: Gaussian posteriors, the KL (or its decomposition) weighted per pixel.

The reference divides the latent terms by the pixel count d_x = C·H·W: β-VAE's loss is
BCE + (d_z/d_x)·β·mean_j KL_j (= (BCE_sum + β·KL_sum)/d_x), β-TCVAE's is BCE + (λ_MI·MI + λ_TC·TC +
λ_DWKL·DWKL)/d_x. Training decodes a sample, evaluation decodes the mean.
"""

from __future__ import annotations

from torch import nn

from ..latents import DiagonalGaussianLatent, TotalCorrelationLatent
from .base import Autoencoder
from .registry import ModelParts, register


def _pixels(parts: ModelParts) -> int:
    return parts.in_channels * parts.image_size * parts.image_size


@register("beta_vae", weight_decay=0.0, beta=1.0)
def build_beta_vae(parts: ModelParts, num_latents: int, *, beta: float = 1.0, **_: object) -> nn.Module:
    latent = DiagonalGaussianLatent(num_latents)
    encoder, decoder = parts.make(latent.num_inputs, num_latents)
    return Autoencoder(encoder, latent, decoder, {"bce": 1.0, "kl": beta * num_latents / _pixels(parts)})


@register("beta_tcvae", weight_decay=0.0, lambda_mi=1.0, lambda_tc=1.0, lambda_dwkl=1.0)
def build_beta_tcvae(parts: ModelParts, num_latents: int, *, dataset_size: int, lambda_mi: float = 1.0,
                     lambda_tc: float = 1.0, lambda_dwkl: float = 1.0, **_: object) -> nn.Module:
    latent = TotalCorrelationLatent(num_latents, dataset_size)
    encoder, decoder = parts.make(latent.num_inputs, num_latents)
    d_x = _pixels(parts)
    weights = {"bce": 1.0, "kl": 0.0, "mutual_information": lambda_mi / d_x, "total_correlation": lambda_tc / d_x,
               "dimension_kl": lambda_dwkl / d_x}
    return Autoencoder(encoder, latent, decoder, weights)
