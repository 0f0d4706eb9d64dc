"""KLM: Tripod's kernel estimate of the latents' multiinformation (total correlation) over a batch.

Hsu, Ibn Hamid, Burns, Finn, Wu (ICML 2024, arXiv 2404.10282), `latent_multiinformation` in kylehkhsu/tripod.
A Gaussian kernel density estimate of the joint and of each marginal from the batch itself, with per-latent
bandwidths from the latent's batch standard deviation: the per-latent scale invariance the paper calls
stabilizing. Cost O(B^2 d) per step.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

STD_FLOOR = 1e-6


def silverman_factor(batch: int, dims: int) -> float:
    """Silverman's rule for a d-dimensional Gaussian kernel: (4/(d+2))^(1/(d+4)) * B^(-1/(d+4))."""
    return (4 / (dims + 2)) ** (1 / (dims + 4)) * batch ** (-1 / (dims + 4))


def _log_normal(diff: Tensor, scale: Tensor) -> Tensor:
    return -0.5 * (diff / scale).square() - torch.log(scale) - 0.5 * math.log(2 * math.pi)


def kernel_multiinformation(z: Tensor, scale_from: Tensor | None = None) -> Tensor:
    """Batch mean of log q(z_i) - sum_k log q_k(z_ik), kernel densities over the batch (self-pair kept).

    ``z`` (B, d): the latents the decoder sees (quantized ones when quantizing). ``scale_from`` (B, d): what
    the bandwidths s_k = std_batch + 1e-6 come from; Tripod takes them from the continuous z_c even when
    ``z`` is quantized (a mixing of spaces its code does; None: from ``z`` itself). The joint kernel has
    bandwidth a * s_k with Silverman's factor a on the joint dimension; each marginal uses s_k without it,
    as the authors' code does.
    """
    if z.ndim != 2:
        raise ValueError(f"expected latents of shape (batch, dims), got {tuple(z.shape)}")
    batch, dims = z.shape
    source = z if scale_from is None else scale_from
    s = source.std(dim=0, unbiased=False) + STD_FLOOR
    diff = z[:, None, :] - z[None, :, :]  # (B, B, d): z_i - z_j
    log_batch = math.log(batch)
    joint = torch.logsumexp(_log_normal(diff, silverman_factor(batch, dims) * s).sum(-1), dim=1) - log_batch
    marginals = (torch.logsumexp(_log_normal(diff, s), dim=1) - log_batch).sum(-1)
    return (joint - marginals).mean()
