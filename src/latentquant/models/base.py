"""The autoencoder every AE-family objective is made of: encoder -> latent module -> decoder.

An objective is a set of loss weights over the terms that the parts produce: the reconstruction term
(`bce`) and whatever the latent module returns (quantization, commitment, ...). So QLAE and AE differ
only in their latent module and weights, and new objectives are new combinations, not new loops.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..latents import LatentOutput


def bce_per_pixel(logits: Tensor, target: Tensor) -> Tensor:
    """Sigmoid cross-entropy with soft targets in [0, 1], averaged over pixels and then over the batch."""
    return F.binary_cross_entropy_with_logits(logits, target, reduction="mean")


@dataclass
class Reconstruction:
    logits: Tensor
    latent: LatentOutput


class LatentModel:
    """What evaluation needs of any model with `encoder`, `latent` and `decoder` parts (autoencoders, and GANs
    whose generator is the decoder): encode real images, decode latents, reconstruct."""

    encoder: nn.Module
    latent: nn.Module
    decoder: nn.Module

    @property
    def discrete_latents(self) -> bool:
        return bool(getattr(self.latent, "discrete", False))

    def encode(self, x: Tensor) -> LatentOutput:
        return self.latent(self.encoder(x))

    def decode(self, z: Tensor) -> Tensor:
        return self.decoder(z)

    def forward(self, x: Tensor) -> Reconstruction:
        latent = self.encode(x)
        return Reconstruction(logits=self.decoder(latent.z_hat), latent=latent)

    def no_decay_parameter_names(self) -> set[str]:
        """Biases (incl. norm shifts) and the whole latent module: trained without decay or clipping."""
        names = set()
        for name, _ in self.named_parameters():
            if name.endswith(".bias") or name.startswith("latent."):
                names.add(name)
        return names


class Autoencoder(LatentModel, nn.Module):
    """Encoder, latent module and decoder with the weights that make them an objective.

    ``weights`` maps term names to multipliers: ``bce`` for reconstruction and any name that the latent
    module returns in ``LatentOutput.losses``. A latent term without a weight is an error, so an
    objective never silently drops a loss.
    """

    def __init__(self, encoder: nn.Module, latent: nn.Module, decoder: nn.Module, weights: dict[str, float]):
        super().__init__()
        self.encoder = encoder
        self.latent = latent
        self.decoder = decoder
        self.weights = dict(weights)


    def loss(self, x: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """Weighted objective and its unweighted terms (detached) for logging."""
        return self.objective(x, self(x))

    def objective(self, x: Tensor, out: Reconstruction) -> tuple[Tensor, dict[str, Tensor]]:
        """The loss of an already computed forward pass (evaluation reuses its forward pass)."""
        return weighted_sum(self.weights, {"bce": bce_per_pixel(out.logits, x), **out.latent.losses})


def weighted_sum(weights: dict[str, float], terms: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
    """Σ weight · term, and the unweighted terms plus the total, detached, for logging.

    Every term needs a weight: a latent module that adds a loss nobody weighted is an error, not a silent 0.
    """
    missing = set(terms) - set(weights)
    if missing:
        raise KeyError(f"no weight for loss terms {sorted(missing)}")
    total = sum(weights[name] * value for name, value in terms.items())
    logged = {name: value.detach() for name, value in terms.items()}
    logged["loss"] = total.detach()
    return total, logged


def param_groups(model: nn.Module, weight_decay: float, only: Sequence[str] | None = None) -> list[dict]:
    """The reference's two partitions: 'regularized' (decayed, clipped) and 'unregularized'.

    `only` restricts both groups to the named submodules (a GAN's two optimizers each own a part).
    """
    no_decay = model.no_decay_parameter_names()
    prefixes = None if only is None else tuple(f"{m}." for m in only)
    decayed, plain = [], []
    for name, p in model.named_parameters():
        if prefixes is not None and not name.startswith(prefixes):
            continue
        if p.requires_grad:
            (plain if name in no_decay else decayed).append(p)
    return [
        {"params": decayed, "weight_decay": weight_decay, "name": "regularized", "clip": True},
        {"params": plain, "weight_decay": 0.0, "name": "unregularized", "clip": False},
    ]


def make_optimizer(
    model: nn.Module, *, lr: float, weight_decay: float, betas=(0.9, 0.999), fused: bool | None = None,
    only: Sequence[str] | None = None,
) -> torch.optim.Optimizer:
    """AdamW (decoupled decay) on the regularized group; AdamW with zero decay is exactly Adam.

    `fused` runs the whole update as one kernel per group (CPU and CUDA); None keeps PyTorch's default.
    """
    return torch.optim.AdamW(param_groups(model, weight_decay, only), lr=lr, betas=betas, eps=1e-8, fused=fused)


def clip_gradients(optimizer: torch.optim.Optimizer, clip: float) -> None:
    """Element-wise gradient clamp to [-clip, clip], on the regularized group only (optax.clip)."""
    grads = [p.grad for g in optimizer.param_groups if g.get("clip") for p in g["params"] if p.grad is not None]
    if grads and clip > 0:
        torch._foreach_clamp_min_(grads, -clip)
        torch._foreach_clamp_max_(grads, clip)
