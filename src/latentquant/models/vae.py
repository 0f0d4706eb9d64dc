"""β-VAE and β-TCVAE: Gaussian posteriors, the KL (or its decomposition) weighted per pixel.

The reference divides the latent terms by the pixel count d_x = C·H·W: β-VAE's loss is
BCE + (d_z/d_x)·β·mean_j KL_j (= (BCE_sum + β·KL_sum)/d_x), β-TCVAE's is BCE + (λ_MI·MI + λ_TC·TC +
λ_DWKL·DWKL)/d_x. Training decodes a sample, evaluation decodes the mean.
"""

from __future__ import annotations

from ..modules.latents import DiagonalGaussianLatent, TotalCorrelationLatent
from .autoencoder import Autoencoder
from .registry import ModelParts, register


def _pixels(parts: ModelParts) -> int:
    return parts.in_channels * parts.image_size * parts.image_size


def build_beta_vae(parts: ModelParts, num_latents: int, *, beta: float = 1.0) -> Autoencoder:
    latent = DiagonalGaussianLatent(num_latents)
    return Autoencoder(parts.encoder(latent.num_inputs), latent, parts.decoder(num_latents),
                       {"bce": 1.0, "kl": beta * num_latents / _pixels(parts)})


def build_beta_tcvae(parts: ModelParts, num_latents: int, *, lambda_mi: float = 1.0, lambda_tc: float = 1.0,
                     lambda_dwkl: float = 1.0) -> Autoencoder:
    if parts.dataset_size is None:
        raise ValueError("beta_tcvae needs the dataset size (ModelParts.dataset_size)")
    latent = TotalCorrelationLatent(num_latents, parts.dataset_size)
    d_x = _pixels(parts)
    weights = {"bce": 1.0, "kl": 0.0, "mutual_information": lambda_mi / d_x, "total_correlation": lambda_tc / d_x,
               "dimension_kl": lambda_dwkl / d_x}
    return Autoencoder(parts.encoder(latent.num_inputs), latent, parts.decoder(num_latents), weights)


register("beta_vae", build_beta_vae, weight_decay=0.0)
register("beta_tcvae", build_beta_tcvae, weight_decay=0.0)
