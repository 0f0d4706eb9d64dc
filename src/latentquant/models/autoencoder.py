"""The autoencoder every AE-family objective is made of: encoder -> latent module -> decoder.

An objective is a set of loss weights over the terms that the parts produce: the reconstruction term
(`bce`) and whatever the latent module returns (quantization, commitment, ...). So QLAE and AE differ
only in their latent module and weights, and new objectives are new combinations, not new loops.

Two batch terms compose with any of them (Tripod's legs 2 and 3): ``klm``, the kernel multiinformation of
the latents, and ``nhp``, the decoder's normalized Hessian penalty. They are computed only when weighted, so
an objective that does not use them pays nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ..modules.klm import kernel_multiinformation
from ..modules.nhp import normalized_hessian_penalty
from .base import LatentModel, Reconstruction, bce_per_pixel, weighted_sum
from .optim import make_optimizer, step_on

COMPOSABLE_TERMS = ("klm", "nhp")
EVAL_SEED = 0


class Autoencoder(LatentModel):
    """Encoder, latent module and decoder with the weights that make them an objective.

    ``weights`` maps term names to multipliers: ``bce`` for reconstruction and any name that the latent
    module returns in ``LatentOutput.losses``. A latent term without a weight is an error, so an
    objective never silently drops a loss. A positive weight on ``klm`` or ``nhp`` (COMPOSABLE_TERMS) adds
    that batch term. One optimizer, one update per batch.
    """

    def __init__(self, encoder: nn.Module, latent: nn.Module, decoder: nn.Module, weights: dict[str, float]):
        super().__init__()
        self.encoder = encoder
        self.latent = latent
        self.decoder = decoder
        self.weights = dict(weights)
        self._loss = self.loss

    def loss(self, x: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """Weighted objective and its unweighted terms (detached) for logging."""
        return self.objective(x, self(x))

    def objective(self, x: Tensor, out: Reconstruction) -> tuple[Tensor, dict[str, Tensor]]:
        """The loss of an already computed forward pass."""
        return weighted_sum(self.weights, {"bce": bce_per_pixel(out.logits, x), **out.latent.losses,
                                           **self.batch_terms(out)})

    def batch_terms(self, out: Reconstruction) -> dict[str, Tensor]:
        """The composable terms this objective weights, on the latents the decoder saw."""
        terms = {}
        if self.weights.get("klm"):
            terms["klm"] = kernel_multiinformation(out.latent.z_hat, out.latent.continuous)
        if self.weights.get("nhp"):
            # An evaluation draws its own fixed directions: it must not move the training's RNG, or a run
            # resumed past an evaluation would draw other directions than the uninterrupted run.
            generator = None if self.training else torch.Generator().manual_seed(EVAL_SEED)
            terms["nhp"] = normalized_hessian_penalty(self.hessian_layers, out.latent.z_hat, generator=generator)
        return terms

    def hessian_layers(self, z: Tensor) -> Sequence[Tensor]:
        """The decoder activations NHP penalises: the built-in decoder's own choice, else its output logits."""
        layers = getattr(self.decoder, "hessian_layers", None)
        return layers(z) if layers is not None else [self.decoder(z)]

    def add_terms(self, **weights: float) -> Autoencoder:
        """Weight composable terms (a zero weight leaves a term off, and uncomputed); returns self."""
        unknown = set(weights) - set(COMPOSABLE_TERMS)
        if unknown:
            raise KeyError(f"no composable terms {sorted(unknown)}; there are {', '.join(COMPOSABLE_TERMS)}")
        for name, weight in weights.items():
            if weight:
                self.weights[name] = float(weight)
            else:
                self.weights.pop(name, None)
        return self

    def configure_optimizers(self, *, lr: float, weight_decay: float, fused: bool | None = None
                             ) -> dict[str, torch.optim.Optimizer]:
        return {"model": make_optimizer(self, lr=lr, weight_decay=weight_decay, fused=fused)}

    def train_step(self, x: Tensor, step: int, optimizers: dict[str, torch.optim.Optimizer], *, clip: float,
                   rng: torch.Generator) -> dict[str, Tensor]:
        loss, terms = self._loss(x)
        step_on(optimizers["model"], loss, clip)
        return terms

    def compile_for_training(self) -> None:
        self._loss = torch.compile(self.loss)

    def eval_terms(self, x: Tensor, out: Reconstruction) -> dict[str, Tensor]:
        return self.objective(x, out)[1]
