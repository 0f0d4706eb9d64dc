"""Latent modules: what sits between encoder and decoder, and the interface they share.

A latent module maps the encoder's output to ``z_hat`` for the decoder, names the representation the
metrics score, and returns its own unweighted loss terms. Objectives weight those terms, so any latent
combines with any encoder, decoder and objective.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass
class LatentOutput:
    """What every latent module returns.

    ``z_hat`` goes to the decoder; ``representation`` is what the metrics see; ``losses`` are the
    unweighted latent-specific terms that the objective weights (e.g. quantization, commitment).
    ``indices`` are a quantized latent's codebook indices; ``scale`` is a Gaussian posterior's standard
    deviation, for protocols that score a sample of the posterior instead of its mean. ``continuous`` is a
    quantizer's pre-rounding latent (FSQ's post-tanh z_c): KLM takes its bandwidths from it.
    """

    z_hat: Tensor
    representation: Tensor
    losses: dict[str, Tensor]
    indices: Tensor | None = None
    scale: Tensor | None = None
    continuous: Tensor | None = None


@runtime_checkable
class LatentModule(Protocol):
    """What the loop, the evaluation and the report need of a latent module (besides ``forward``).

    ``discrete``: the representation is a code (scored with discrete estimators). ``sweep(j, reps, n)``: the
    values that latent j's traversal row decodes (a codebook, a range, a prior's support), or None when the
    latent has no scalar axis (a VQ slot). ``codebook_sizes()``: the number of codes of each latent (None for
    continuous latents); ``codebook_values()``: each latent's scalar codebook (None unless scalar-quantized).
    """

    discrete: bool
    num_latents: int

    @property
    def num_inputs(self) -> int: ...

    def sweep(self, j: int, representations: np.ndarray, n: int) -> Tensor | None: ...

    def codebook_sizes(self) -> list[int] | None: ...

    def codebook_values(self) -> list[Tensor] | None: ...


def range_sweep(representations: np.ndarray, j: int, n: int) -> Tensor:
    """`n` evenly spaced values between latent j's minimum and maximum over the evaluation set."""
    lo, hi = representations[:, j].min(), representations[:, j].max()
    return torch.linspace(float(lo), float(hi), n)


class _Continuous:
    """The latent-module hooks shared by continuous latents: a range sweep, no codebook."""

    discrete = False

    def sweep(self, j: int, representations: np.ndarray, n: int) -> Tensor | None:
        return range_sweep(representations, j, n)

    def codebook_sizes(self) -> list[int] | None:
        return None

    def codebook_values(self) -> list[Tensor] | None:
        return None


class ContinuousLatent(_Continuous, nn.Module):
    """The identity latent of a plain autoencoder: the decoder sees the encoder output as it is."""

    def __init__(self, num_latents: int) -> None:
        super().__init__()
        self.num_latents = num_latents

    @property
    def num_inputs(self) -> int:
        return self.num_latents

    def forward(self, z: Tensor) -> LatentOutput:
        return LatentOutput(z_hat=z, representation=z.detach(), losses={})


class UniformPrior(ContinuousLatent):
    """InfoWGAN-GP's continuous latent: identity on encodings, prior U[0, 1)^d (not [-1, 1], as the reference)."""

    def sweep(self, j: int, representations: np.ndarray, n: int) -> Tensor | None:
        """The prior's support [0, 1) in `n` steps: a GAN's traversals start from a prior draw, not an encoding."""
        return torch.arange(n) / n

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> Tensor:
        # Drawn on the CPU so a seeded CPU generator gives the same samples whatever the device.
        return torch.rand(batch_size, self.num_latents, generator=generator)


class BioLatent(ContinuousLatent):
    """BioAE's latent: identity, plus a non-negativity hinge mean_j max(-z_j, 0) and the activity mean_j z_j^2."""

    def forward(self, z: Tensor) -> LatentOutput:
        losses = {"nonnegativity": F.relu(-z).mean(), "activity": z.square().mean()}
        return LatentOutput(z_hat=z, representation=z.detach(), losses=losses)


def _gaussian_log_density(z: Tensor, mu: Tensor, log_sigma: Tensor) -> Tensor:
    return -0.5 * (math.log(2 * math.pi) + 2 * log_sigma + ((z - mu) * torch.exp(-log_sigma)).square())


class DiagonalGaussianLatent(_Continuous, nn.Module):
    """The VAE posterior N(mu, sigma^2), sigma = softplus(raw) as the reference (no epsilon).

    Training decodes a reparameterised sample; evaluation (``model.eval()``) decodes mu, and the metrics
    always see mu. ``losses['kl']`` = mean_j KL(N(mu_j, sigma_j^2) || N(0, 1)), averaged over the batch.
    """

    def __init__(self, num_latents: int) -> None:
        super().__init__()
        self.num_latents = num_latents

    @property
    def num_inputs(self) -> int:
        return 2 * self.num_latents

    def posterior(self, h: Tensor) -> tuple[Tensor, Tensor]:
        mu, raw = h.chunk(2, dim=1)
        return mu, F.softplus(raw)

    def forward(self, h: Tensor) -> LatentOutput:
        mu, sigma = self.posterior(h)
        z = mu + sigma * torch.randn_like(mu) if self.training else mu
        kl = (-torch.log(sigma) + 0.5 * (mu.square() + sigma.square() - 1)).mean()
        return LatentOutput(z_hat=z, representation=mu.detach(), losses={"kl": kl, **self.extra_losses(z, mu, sigma)},
                            scale=sigma.detach())

    def extra_losses(self, z: Tensor, mu: Tensor, sigma: Tensor) -> dict[str, Tensor]:
        return {}


class TotalCorrelationLatent(DiagonalGaussianLatent):
    """β-TCVAE's decomposition of the KL with the minibatch-weighted sampling estimator (Chen et al. 2018).

    Per example i (sums over dimensions): mutual_information = log q(z_i|x_i) - log q(z_i),
    total_correlation = log q(z_i) - sum_k log q(z_ik), dimension_kl = sum_k log q(z_ik) - log p(z_i), with
    log q(z_i) ~ logsumexp_j log q(z_i|x_j) - log(B N), N the dataset size; each averaged over the batch.
    """

    def __init__(self, num_latents: int, dataset_size: int) -> None:
        super().__init__(num_latents)
        self.dataset_size = int(dataset_size)

    def extra_losses(self, z: Tensor, mu: Tensor, sigma: Tensor) -> dict[str, Tensor]:
        batch = z.shape[0]
        log_sigma = torch.log(sigma)
        log_q_zx = _gaussian_log_density(z, mu, log_sigma).sum(1)
        log_p_z = _gaussian_log_density(z, torch.zeros_like(z), torch.zeros_like(z)).sum(1)
        pairwise = _gaussian_log_density(z[:, None], mu[None], log_sigma[None])  # (B, B, D): z_i under q(.|x_j)
        norm = math.log(batch * self.dataset_size)
        log_q_z = torch.logsumexp(pairwise.sum(2), dim=1) - norm
        log_prod_q = (torch.logsumexp(pairwise, dim=1) - norm).sum(1)
        return {"mutual_information": (log_q_zx - log_q_z).mean(), "total_correlation": (log_q_z - log_prod_q).mean(),
                "dimension_kl": (log_prod_q - log_p_z).mean()}
