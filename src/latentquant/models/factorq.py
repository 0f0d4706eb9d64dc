"""FactorVAE (Kim & Mnih 2018), FactorQVAE and QVAE (Baykal, Kandemir, Unal; arXiv 2409.14851).

Each is an autoencoder plus, for the two Factor models, a total-correlation discriminator with its own
optimizer, trained by Autoencoder's split-batch step (models/autoencoder.py; any autoencoder gets the same
with `model.tc`). The codes are the posterior sample (FactorVAE) or the relaxed one-hots (FactorQVAE).

- FactorVAE: Gaussian posterior; BCE + (d_z·mean KL + γ·TC)/d_x (the per-pixel form of the paper's sums,
  as β-VAE here); the discriminator's Adam uses the paper's betas (0.5, 0.9).
- FactorQVAE: one global codebook of 64 scalars with a Gumbel-softmax relaxation, τ = exp(−rate·step);
  MSE (the authors' code) + β_KL·KL(q ‖ Uniform) + γ·TC; plain Adam for both optimizers.
- QVAE: FactorQVAE without the TC term (no discriminator).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..modules.discriminator import TotalCorrelationDiscriminator
from ..modules.latents import DiagonalGaussianLatent, LatentOutput
from ..modules.quantizers import GumbelScalarQuantizer
from .autoencoder import Autoencoder
from .base import Reconstruction, bce_per_pixel, weighted_sum
from .registry import ModelParts, register

RECONSTRUCTIONS = ("bce", "mse")


class FactorAutoencoder(Autoencoder):
    """An autoencoder with FactorVAE's discriminator (Autoencoder's split-batch step), an optional MSE
    reconstruction and a temperature schedule.

    ``weights``: as `Autoencoder`, plus ``total_correlation`` when there is a discriminator and ``mse`` when
    ``reconstruction`` is "mse" (BCE is then still logged, with weight 0, so every model reports it).
    ``temperature_decay``: τ = exp(−decay·step) for a latent module with a ``temperature`` (FactorQVAE's).
    """

    def __init__(self, encoder: nn.Module, latent: nn.Module, decoder: nn.Module, weights: dict[str, float],
                 discriminator: TotalCorrelationDiscriminator | None = None, *, reconstruction: str = "bce",
                 temperature_decay: float = 0.0, discriminator_betas: tuple[float, float] = (0.9, 0.999)) -> None:
        if reconstruction not in RECONSTRUCTIONS:
            raise ValueError(f"reconstruction must be one of {RECONSTRUCTIONS}, got {reconstruction!r}")
        super().__init__(encoder, latent, decoder, weights, discriminator, discriminator_betas=discriminator_betas)
        self.reconstruction = reconstruction
        self.temperature_decay = float(temperature_decay)

    def latent_codes(self, h: Tensor) -> tuple[LatentOutput, Tensor]:
        """The latent output and what the discriminator reads: relaxed one-hots, else the decoder's input."""
        with_codes = getattr(self.latent, "forward_with_codes", None)
        return with_codes(h) if with_codes is not None else super().latent_codes(h)

    def set_temperature(self, step: int) -> None:
        """τ = exp(−decay·step), a function of the step alone, so a resumed run has the same τ."""
        temperature = getattr(self.latent, "temperature", None)
        if isinstance(temperature, Tensor):
            temperature.fill_(math.exp(-self.temperature_decay * step))

    def objective(self, x: Tensor, out: Reconstruction) -> tuple[Tensor, dict[str, Tensor]]:
        terms = {"bce": bce_per_pixel(out.logits, x), **out.latent.losses}
        if self.reconstruction == "mse":
            # On [0, 1] images this equals the authors' MSE on images shifted to [-0.5, 0.5].
            terms["mse"] = F.mse_loss(torch.sigmoid(out.logits), x)
        return weighted_sum(self.weights, terms)

    def train_step(self, x: Tensor, step: int, optimizers: dict[str, torch.optim.Optimizer], *, clip: float,
                   rng: torch.Generator) -> dict[str, Tensor]:
        self.set_temperature(step)
        return super().train_step(x, step, optimizers, clip=clip, rng=rng)


def _pixels(parts: ModelParts) -> int:
    return parts.in_channels * parts.image_size * parts.image_size


def build_factor_vae(parts: ModelParts, num_latents: int, *, gamma: float = 10.0, discriminator_width: int = 1000,
                     discriminator_layers: int = 6) -> FactorAutoencoder:
    latent = DiagonalGaussianLatent(num_latents)
    d_x = _pixels(parts)
    weights = {"bce": 1.0, "kl": num_latents / d_x, "total_correlation": gamma / d_x}
    discriminator = TotalCorrelationDiscriminator(num_latents, width=discriminator_width, layers=discriminator_layers)
    return FactorAutoencoder(parts.encoder(latent.num_inputs), latent, parts.decoder(num_latents), weights,
                             discriminator, discriminator_betas=(0.5, 0.9))


def build_factorqvae(parts: ModelParts, num_latents: int, *, with_tc: bool = True, num_values: int = 64,
                     beta_kl: float = 1e-3, gamma: float = 1e-4, temperature_decay: float = 1e-5,
                     reconstruction: str = "mse", discriminator_width: int = 1000, discriminator_layers: int = 6
                     ) -> FactorAutoencoder:
    """`with_tc`: FactorQVAE (True) or QVAE (False; fixed per registration, so not a key)."""
    latent = GumbelScalarQuantizer(num_latents, num_values)
    weights = {"bce": 1.0 if reconstruction == "bce" else 0.0, "kl": beta_kl}
    if reconstruction == "mse":
        weights["mse"] = 1.0
    discriminator = None
    if with_tc:
        weights["total_correlation"] = gamma
        discriminator = TotalCorrelationDiscriminator(num_latents * num_values, width=discriminator_width,
                                                      layers=discriminator_layers)
    return FactorAutoencoder(parts.encoder(latent.num_inputs), latent, parts.decoder(num_latents), weights,
                             discriminator, reconstruction=reconstruction, temperature_decay=temperature_decay)


# Kim & Mnih tune γ per dataset (their 3D Shapes figure uses small values); 10 is disentanglement_lib's lowest
# sweep value, kept as a neutral default until a per-dataset value is confirmed.
# Their own discriminator is the TC term (weight: gamma), so the composable `tc` is not offered.
register("factor_vae", build_factor_vae, weight_decay=0.0, tc=None)
register("factorqvae", build_factorqvae, weight_decay=0.0, fixed=dict(with_tc=True), tc=None)
_NO_TC = dict(with_tc=False, gamma=1e-4, discriminator_width=1000, discriminator_layers=6)
register("qvae", build_factorqvae, weight_decay=0.0, fixed=_NO_TC)
