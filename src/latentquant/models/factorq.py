"""FactorVAE (Kim & Mnih 2018), FactorQVAE and QVAE (Baykal, Kandemir, Unal; arXiv 2409.14851).

Each is an autoencoder plus, for the two Factor models, a total-correlation discriminator with its own
optimizer. One `train_step` splits the batch: the first half updates the autoencoder on
reconstruction + latent terms + γ·TC, where TC = mean(D_0 − D_1) on its codes; the second half, encoded
again after that update, is permuted dimension-wise and, against the first half's codes, trains the
discriminator. The codes are the posterior sample (FactorVAE) or the relaxed one-hots (FactorQVAE).

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

from ..modules.discriminator import TotalCorrelationDiscriminator, permute_dims
from ..modules.latents import DiagonalGaussianLatent, LatentOutput
from ..modules.quantizers import GumbelScalarQuantizer
from .autoencoder import Autoencoder
from .base import Reconstruction, bce_per_pixel, weighted_sum
from .optim import make_optimizer, step_on
from .registry import ModelParts, register

RECONSTRUCTIONS = ("bce", "mse")


class FactorAutoencoder(Autoencoder):
    """An autoencoder whose objective may add a discriminator's TC estimate, with a temperature schedule.

    ``weights``: as `Autoencoder`, plus ``total_correlation`` when there is a discriminator and ``mse`` when
    ``reconstruction`` is "mse" (BCE is then still logged, with weight 0, so every model reports it).
    ``temperature_decay``: τ = exp(−decay·step) for a latent module with a ``temperature`` (FactorQVAE's).
    """

    def __init__(self, encoder: nn.Module, latent: nn.Module, decoder: nn.Module, weights: dict[str, float],
                 discriminator: TotalCorrelationDiscriminator | None = None, *, reconstruction: str = "bce",
                 temperature_decay: float = 0.0, discriminator_betas: tuple[float, float] = (0.9, 0.999)) -> None:
        if reconstruction not in RECONSTRUCTIONS:
            raise ValueError(f"reconstruction must be one of {RECONSTRUCTIONS}, got {reconstruction!r}")
        super().__init__(encoder, latent, decoder, weights)
        self.discriminator = discriminator
        self.reconstruction = reconstruction
        self.temperature_decay = float(temperature_decay)
        self.discriminator_betas = discriminator_betas
        self._vae_loss = self.vae_loss

    # --- the parts ------------------------------------------------------------------------------------------

    def encode_codes(self, x: Tensor) -> tuple[LatentOutput, Tensor]:
        """The latent output and what the discriminator reads: relaxed one-hots, else the decoder's input."""
        h = self.encoder(x)
        with_codes = getattr(self.latent, "forward_with_codes", None)
        if with_codes is not None:
            return with_codes(h)
        out = self.latent(h)
        return out, out.z_hat

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

    def vae_loss(self, x: Tensor) -> tuple[Tensor, dict[str, Tensor], Tensor]:
        """The autoencoder's objective on `x` (γ·TC included) and its codes, for the discriminator's step."""
        latent, codes = self.encode_codes(x)
        out = Reconstruction(logits=self.decoder(latent.z_hat), latent=latent)
        if self.discriminator is None:
            loss, terms = self.objective(x, out)
            return loss, terms, codes
        # The penalty trains the encoder only: the discriminator's weights are frozen in it.
        tc = self.discriminator.total_correlation(codes, frozen=True)
        loss, terms = self.objective(x, out)
        loss = loss + self.weights["total_correlation"] * tc
        terms["total_correlation"] = tc.detach()
        terms["loss"] = loss.detach()
        return loss, terms, codes

    # --- training -------------------------------------------------------------------------------------------

    def configure_optimizers(self, *, lr: float, weight_decay: float, fused: bool | None = None
                             ) -> dict[str, torch.optim.Optimizer]:
        """The autoencoder's optimizer and, for the Factor models, the discriminator's: each owns its part."""
        optimizers = {"model": make_optimizer(self, lr=lr, weight_decay=weight_decay, fused=fused,
                                              only=["encoder", "latent", "decoder"])}
        if self.discriminator is not None:
            optimizers["discriminator"] = make_optimizer(self, lr=lr, weight_decay=weight_decay, fused=fused,
                                                         betas=self.discriminator_betas, only=["discriminator"])
        return optimizers

    def train_step(self, x: Tensor, step: int, optimizers: dict[str, torch.optim.Optimizer], *, clip: float,
                   rng: torch.Generator) -> dict[str, Tensor]:
        self.set_temperature(step)
        if self.discriminator is None:
            loss, terms, _ = self._vae_loss(x)
            step_on(optimizers["model"], loss, clip)
            return terms
        if x.shape[0] < 2:
            raise ValueError("FactorVAE-style training splits each batch in two: it needs a batch of 2 or more")
        half = (x.shape[0] + 1) // 2
        loss, terms, codes = self._vae_loss(x[:half])
        step_on(optimizers["model"], loss, clip)
        with torch.no_grad():  # re-encoded by the updated encoder, as in Kim & Mnih's algorithm
            _, other = self.encode_codes(x[half:])
        d_loss = self.discriminator.loss(codes.detach(), permute_dims(other, rng))
        step_on(optimizers["discriminator"], d_loss, clip)
        terms["discriminator"] = d_loss.detach()
        return terms

    def compile_for_training(self) -> None:
        self._vae_loss = torch.compile(self.vae_loss)

    def eval_terms(self, x: Tensor, out: Reconstruction) -> dict[str, Tensor]:
        terms = self.objective(x, out)[1]
        if self.discriminator is not None:
            # Evaluation codes are exact one-hots (FactorQVAE) or posterior means (FactorVAE): a diagnostic.
            _, codes = self.encode_codes(x)
            terms["total_correlation"] = self.discriminator.total_correlation(codes).detach()
        return terms


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


def build_factorqvae(parts: ModelParts, num_latents: int, *, tc: bool = True, num_values: int = 64,
                     beta_kl: float = 1e-3, gamma: float = 1e-4, temperature_decay: float = 1e-5,
                     reconstruction: str = "mse", discriminator_width: int = 1000, discriminator_layers: int = 6
                     ) -> FactorAutoencoder:
    """`tc`: FactorQVAE (True) or QVAE (False; fixed per registration, so not a key)."""
    latent = GumbelScalarQuantizer(num_latents, num_values)
    weights = {"bce": 1.0 if reconstruction == "bce" else 0.0, "kl": beta_kl}
    if reconstruction == "mse":
        weights["mse"] = 1.0
    discriminator = None
    if tc:
        weights["total_correlation"] = gamma
        discriminator = TotalCorrelationDiscriminator(num_latents * num_values, width=discriminator_width,
                                                      layers=discriminator_layers)
    return FactorAutoencoder(parts.encoder(latent.num_inputs), latent, parts.decoder(num_latents), weights,
                             discriminator, reconstruction=reconstruction, temperature_decay=temperature_decay)


# Kim & Mnih tune γ per dataset (their 3D Shapes figure uses small values); 10 is disentanglement_lib's lowest
# sweep value, kept as a neutral default until a per-dataset value is confirmed.
register("factor_vae", build_factor_vae, weight_decay=0.0)
register("factorqvae", build_factorqvae, weight_decay=0.0, fixed=dict(tc=True))
_NO_TC = dict(tc=False, gamma=1e-4, discriminator_width=1000, discriminator_layers=6)
register("qvae", build_factorqvae, weight_decay=0.0, fixed=_NO_TC)
