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

import torch
from torch import Tensor, nn

from ..modules.latents import UniformPrior
from ..modules.networks import CriticEncoder, StyleDecoder
from ..modules.quantizers import ScalarQuantizer
from .base import LatentModel, Reconstruction, bce_per_pixel, compiled_or_eager, weighted_sum
from .optim import make_optimizer, step_on
from .registry import ModelParts, register

GENERATOR_PERIOD = 5  # one generator step after every fifth critic step: (step + 1) % 5 == 0
BETAS = (0.0, 0.9)


class InfoWGAN(LatentModel):
    """Critic-encoder, latent module (with a `sample` prior) and generator, with the loss weights.

    ``weights`` keys: value, gradient_penalty, latent, and each term the latent module returns
    (quantization, commitment for the quantized variant). `train.steps` counts critic steps, as the
    reference's `num_steps`.
    """

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

    def configure_optimizers(self, *, lr: float, weight_decay: float, fused: bool | None = None
                             ) -> dict[str, torch.optim.Optimizer]:
        """The reference's two optimizers: the encoder (trunk, both heads) and {generator, latent}."""
        kwargs = dict(lr=lr, weight_decay=weight_decay, betas=BETAS, fused=fused)
        return {"encoder": make_optimizer(self, only=["encoder"], **kwargs),
                "generator": make_optimizer(self, only=["generator", "latent"], **kwargs)}

    def train_step(self, x: Tensor, step: int, optimizers: dict[str, torch.optim.Optimizer], *, clip: float,
                   rng: torch.Generator) -> dict[str, Tensor]:
        loss, terms = self.critic_loss(x, rng)
        step_on(optimizers["encoder"], loss, clip)
        logged = {f"critic/{k}": v for k, v in terms.items()}
        if (step + 1) % GENERATOR_PERIOD == 0:
            # The reference's generator step takes the real batch only for its size.
            loss, terms = self.generator_loss(x.shape[0], rng)
            step_on(optimizers["generator"], loss, clip)
            logged.update({f"generator/{k}": v for k, v in terms.items()})
        return logged

    def compile_for_training(self) -> None:
        # The gradient penalty differentiates the critic twice, which torch.compile does not support;
        # the generator (a forward pass in both steps) is what compiles.
        self.generator.forward = compiled_or_eager(self.generator.forward)

    def eval_terms(self, x: Tensor, out: Reconstruction) -> dict[str, Tensor]:
        """Reconstruction terms for evaluation only; the GAN never trains on them."""
        return {"bce": bce_per_pixel(out.logits, x).detach(), **{k: v.detach() for k, v in out.latent.losses.items()}}

    def traversal_start(self, x: Tensor, rng: torch.Generator) -> Tensor:
        """A prior draw: a GAN's traversals show what the generator does, not what an encoding decodes to."""
        return self.sample_prior(1, rng)

    def samples(self, n: int, rng: torch.Generator) -> Tensor | None:
        return self.fake(self.sample_prior(n, rng))


def build_infowgan(parts: ModelParts, num_latents: int, *, quantized: bool = False, num_values: int = 10,
                   learn_values: bool = True, lambda_gp: float = 10.0, lambda_latent: float = 200.0,
                   lambda_value: float = 1.0, lambda_quant: float = 0.01, lambda_commit: float = 0.01) -> InfoWGAN:
    """`quantized`: QLInfoWGAN-GP (scalar codebooks, prior sampled from them); else a U[0, 1) prior, and the
    codebook keys are not hyperparameters of the model (see the registrations below)."""
    latent = ScalarQuantizer(num_latents, num_values, learn_values=learn_values) if quantized \
        else UniformPrior(num_latents)
    encoder, generator = parts.critic(latent.num_inputs), parts.decoder(num_latents)
    weights = {"value": lambda_value, "gradient_penalty": lambda_gp, "latent": lambda_latent}
    if quantized:
        weights.update(quantization=lambda_quant, commitment=lambda_commit)
    return InfoWGAN(encoder, latent, generator, weights)


_GAN_TRAIN = dict(lr=2e-4, batch_size=64)
_NOT_QUANTIZED = dict(quantized=False, num_values=10, learn_values=True, lambda_quant=0.01, lambda_commit=0.01)
register("infowgan_gp", build_infowgan, family="gan", train=_GAN_TRAIN, weight_decay=1e-4, fixed=_NOT_QUANTIZED)
# 1e-3 is the reference's tuned decay for most datasets (its default file says 1e-4); the paper's ablation drops it.
register("qlinfowgan_gp", build_infowgan, family="gan", train=_GAN_TRAIN, weight_decay=1e-3,
         fixed=dict(quantized=True))
register("qlinfowgan_gp_no_wd", build_infowgan, family="gan", train=_GAN_TRAIN, weight_decay=0.0,
         fixed=dict(quantized=True))
