"""NHP: Tripod's normalized Hessian penalty on the decoder, by second-order central finite differences.

Hsu, Ibn Hamid, Burns, Finn, Wu (ICML 2024, arXiv 2404.10282), `hessian_regularization` in kylehkhsu/tripod.
For each layer f of the decoder, Delta(v) = [f(z+v) - 2 f(z) + f(z-v)] / eps^2 with v = eps * r * s, s the
latents' batch std: a Hessian in std-normalized latent coordinates. Over Rademacher r, Var[Delta] =
2 sum_{i!=j} H_ij^2 (the off-diagonal energy); over Gaussian r, 2 ||H||_F^2 (the total). Their ratio is the
fraction of Hessian energy off the diagonal, in [0, 1] and scale-free.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

EPSILON = 0.1
NUM_PERTURBATIONS = 2
RATIO_FLOOR = 1e-10


def normalized_hessian_penalty(layers: Callable[[Tensor], Sequence[Tensor]], z: Tensor, *, epsilon: float = EPSILON,
                               num_perturbations: int = NUM_PERTURBATIONS, generator: torch.Generator | None = None
                               ) -> Tensor:
    """Sum over the layers that ``layers(z)`` returns of mean(off-diagonal energy) / (mean(total) + 1e-10).

    ``layers`` maps (N, d) latents to a list of activations (N, ...), the same layers every call; it is
    called once, on z and all 4 * num_perturbations perturbed copies stacked, so the extra cost is one
    batched pass of (1 + 4k) B latents. Variances are over the k draws per example (ddof 0), per
    activation element, then averaged over elements and examples. Directions come from ``generator`` (a CPU
    one; drawn there and moved) or else torch's global RNG, as the VAE's sampling, so a resumed run draws the
    same ones.
    """
    if z.ndim != 2:
        raise ValueError(f"expected latents of shape (batch, dims), got {tuple(z.shape)}")
    batch, k = z.shape[0], num_perturbations
    s = z.detach().std(dim=0, unbiased=False)
    shape, device = (k, batch, z.shape[1]), "cpu" if generator is not None else z.device
    rademacher = torch.randint(0, 2, shape, generator=generator, device=device, dtype=z.dtype) * 2 - 1
    gaussian = torch.randn(shape, generator=generator, device=device, dtype=z.dtype)
    rademacher, gaussian = rademacher.to(z.device), gaussian.to(z.device)
    v = epsilon * torch.cat([rademacher, gaussian]) * s  # (2k, B, d)
    stacked = torch.cat([z, (z + v).flatten(0, 1), (z - v).flatten(0, 1)])
    total = z.new_zeros(())
    for a in layers(stacked):
        a = a.flatten(1)
        centre, plus, minus = a[:batch], a[batch:batch * (2 * k + 1)], a[batch * (2 * k + 1):]
        delta = ((plus + minus).view(2 * k, batch, -1) - 2 * centre) / epsilon**2
        off, full = _variance_over_draws(delta[:k]).mean(), _variance_over_draws(delta[k:]).mean()
        total = total + off / (full + RATIO_FLOOR)
    return total


def _variance_over_draws(delta: Tensor) -> Tensor:
    """Population variance over dim 0, element-wise: Tensor.var reduces a leading dim of 2 with a strided
    kernel that took over half the CPU step (and its backward more), these ops stream."""
    return (delta - delta.mean(dim=0)).square().mean(dim=0)
