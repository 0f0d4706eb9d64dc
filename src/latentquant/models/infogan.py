"""InfoWGAN-GP and QLInfoWGAN-GP: a Wasserstein GAN whose critic also predicts the latent that made an image.

The critic shares its trunk with an encoder (CriticEncoder): one head gives the value V(x), the other the
latent ẑ(x), passed through the latent module. Critic/encoder loss, per example then batch mean:

    λ_value·(V(x_fake) − V(x_real)) + λ_gp·(‖∇_x V(x̃)‖₂ − 1)² + λ_latent·mean_j (ẑ_j(x_fake) − z_j)²

with x̃ = ε·x_real + (1−ε)·x_fake, ε ~ U[0, 1) per example, x_fake = sigmoid(generator(z)), z from the prior.
Generator loss: −λ_value·V(x_fake) + λ_latent·(the same latent loss). The quantized variant adds
λ_q·quantization + λ_c·commitment on the fake images' encodings to both, and samples its prior from the
codebooks, so the codebooks learn in the generator step (the generator optimizer owns them).
"""

from __future__ import annotations

from functools import partial

import torch
from torch import Tensor, nn

from ..latents import UniformPrior
from ..nets import CriticEncoder, StyleDecoder
from ..quantize import ScalarQuantizer
from .base import LatentModel, Reconstruction, bce_per_pixel, make_optimizer, weighted_sum
from .registry import GAN_MODELS, ModelParts, register


class InfoWGAN(LatentModel, nn.Module):
    """Critic-encoder, latent module (with a `sample` prior) and generator, with the loss weights.

    ``weights`` keys: value, gradient_penalty, latent, and each term the latent module returns
    (quantization, commitment for the quantized variant).
    """

    # The evaluation's encoder-based traversals make little sense for a GAN; gan.py sweeps the prior instead.
    encoder_traversals = False

    def __init__(self, encoder: CriticEncoder, latent: nn.Module, generator: StyleDecoder,
                 weights: dict[str, float]) -> None:
        super().__init__()
        self.encoder = encoder
        self.latent = latent
        self.generator = generator
        self.weights = dict(weights)

    @property
    def decoder(self) -> nn.Module:
        """The generator is the decoder of the evaluation interface (LatentModel)."""
        return self.generator

    def sample_prior(self, batch_size: int, generator: torch.Generator | None = None) -> Tensor:
        device = next(self.generator.parameters()).device
        return self.latent.sample(batch_size, generator).to(device)

    def fake(self, z: Tensor) -> Tensor:
        return torch.sigmoid(self.generator(z))

    def _latent_terms(self, x_fake: Tensor, z: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """Critic values of fake images and the info terms: latent loss plus the latent module's own."""
        pre_z, value = self.encoder.critique(x_fake)
        out = self.latent(pre_z)
        terms = {"latent": (out.z_hat - z).square().mean(), **out.losses}
        return value, terms

    def gradient_penalty(self, x_mix: Tensor) -> Tensor:
        """mean over the batch of (‖∇_x V(x)‖₂ − 1)², differentiable in the critic's parameters."""
        x_mix = x_mix.detach().requires_grad_(True)
        _, value = self.encoder.critique(x_mix)
        # create_graph: the penalty is itself trained, so its gradient needs a second backward pass.
        (grad,) = torch.autograd.grad(value.sum(), x_mix, create_graph=True)
        return (grad.flatten(1).norm(dim=1) - 1).square().mean()

    def critic_loss(self, x_real: Tensor, generator_rng: torch.Generator | None = None
                    ) -> tuple[Tensor, dict[str, Tensor]]:
        """The critic/encoder objective on a real batch; only the encoder is meant to step on it."""
        batch = x_real.shape[0]
        # The critic step updates the encoder only, so the fake images and prior samples are constants here:
        # no graph through the generator or codebooks is needed (the update is the same as without no_grad).
        with torch.no_grad():
            z = self.sample_prior(batch, generator_rng)
            x_fake = self.fake(z)
        value_fake, terms = self._latent_terms(x_fake, z)
        _, value_real = self.encoder.critique(x_real)
        eps = torch.rand(batch, 1, 1, 1, generator=generator_rng).to(x_real.device, x_real.dtype)
        terms["value"] = (value_fake - value_real).mean()
        terms["gradient_penalty"] = self.gradient_penalty(eps * x_real + (1 - eps) * x_fake)
        return weighted_sum(self.weights, terms)

    def generator_loss(self, batch_size: int, generator_rng: torch.Generator | None = None
                       ) -> tuple[Tensor, dict[str, Tensor]]:
        """The generator objective; gradients pass through the (not stepped) encoder to generator and codebooks."""
        z = self.sample_prior(batch_size, generator_rng)
        value, terms = self._latent_terms(self.fake(z), z)
        terms["value"] = -value.mean()
        return weighted_sum(self.weights, terms)

    def objective(self, x: Tensor, out: Reconstruction) -> tuple[Tensor, dict[str, Tensor]]:
        """Reconstruction terms for evaluation only; the GAN never trains on them."""
        bce = bce_per_pixel(out.logits, x)
        terms = {"bce": bce.detach(), **{k: v.detach() for k, v in out.latent.losses.items()}}
        return bce, terms


def make_gan_optimizers(model: InfoWGAN, *, lr: float, weight_decay: float, betas=(0.0, 0.9),
                        fused: bool | None = None) -> dict[str, torch.optim.Optimizer]:
    """The reference's two optimizers: the encoder (trunk, both heads) and {generator, latent}."""
    kwargs = dict(lr=lr, weight_decay=weight_decay, betas=betas, fused=fused)
    return {"encoder": make_optimizer(model, only=["encoder"], **kwargs),
            "generator": make_optimizer(model, only=["generator", "latent"], **kwargs)}


def build_infowgan(parts: ModelParts, num_latents: int, *, quantized: bool = False, num_values: int = 10,
                   learn_values: bool = True, lambda_gp: float = 10.0, lambda_latent: float = 200.0,
                   lambda_value: float = 1.0, lambda_quant: float = 0.01, lambda_commit: float = 0.01,
                   **_: object) -> InfoWGAN:
    latent = ScalarQuantizer(num_latents, num_values, learn_values=learn_values) if quantized \
        else UniformPrior(num_latents)
    encoder, generator = parts.make(latent.num_inputs, num_latents, critic=True)
    weights = {"value": lambda_value, "gradient_penalty": lambda_gp, "latent": lambda_latent}
    if quantized:
        weights.update(quantization=lambda_quant, commitment=lambda_commit)
    return InfoWGAN(encoder, latent, generator, weights)


_GAN_TRAIN = dict(lr=2e-4, batch_size=64)
_WEIGHTS = dict(lambda_gp=10.0, lambda_latent=200.0, lambda_value=1.0)
_QL = dict(lambda_quant=0.01, lambda_commit=0.01, **_WEIGHTS)
_build_ql = partial(build_infowgan, quantized=True)
register("infowgan_gp", table=GAN_MODELS, train=_GAN_TRAIN, weight_decay=1e-4, **_WEIGHTS)(build_infowgan)
# 1e-3 is the reference's tuned decay for most datasets (its default file says 1e-4); the paper's ablation drops it.
register("qlinfowgan_gp", table=GAN_MODELS, train=_GAN_TRAIN, weight_decay=1e-3, **_QL)(_build_ql)
register("qlinfowgan_gp_no_wd", table=GAN_MODELS, train=_GAN_TRAIN, weight_decay=0.0, **_QL)(_build_ql)
