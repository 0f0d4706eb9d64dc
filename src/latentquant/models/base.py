"""The model contract: what the one training loop, the evaluation and the report need of every model.

A model is an encoder, a latent module and a decoder (a GAN's decoder is its generator). It owns its loss,
its optimizers and its training step, and says where its figures start, so `train.py` and `evaluate.py`
never ask which family a model belongs to.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import warn
from ..modules.latents import LatentOutput


def compiled_or_eager(fn: Callable[..., Any]) -> Callable[..., Any]:
    """torch.compile(fn), or fn itself from the first call on which compiling fails (a machine with no working C++
    compiler, say): one warning line, then the same step eager. Compiling happens before the graph runs, so a
    failed attempt has changed nothing; an error of fn's own is not the compiler's and is raised as it is."""
    from torch._dynamo.exc import TorchDynamoException

    compiled: Callable[..., Any] | None = torch.compile(fn)

    def call(*args: Any, **kwargs: Any) -> Any:
        nonlocal compiled
        if compiled is not None:
            try:
                return compiled(*args, **kwargs)
            except TorchDynamoException as e:
                text = str(e).strip()
                warn(f"torch.compile failed ({text.splitlines()[0][:160] if text else type(e).__name__}); "
                     "training goes on eager")
                compiled = None
        return fn(*args, **kwargs)

    return call


def bce_per_pixel(logits: Tensor, target: Tensor) -> Tensor:
    """Sigmoid cross-entropy with soft targets in [0, 1], averaged over pixels and then over the batch."""
    return F.binary_cross_entropy_with_logits(logits, target, reduction="mean")


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


@dataclass
class Reconstruction:
    logits: Tensor
    latent: LatentOutput


class LatentModel(nn.Module):
    """Encoder -> latent module -> decoder, and the hooks of the training and evaluation contract."""

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
        return {name for name, _ in self.named_parameters() if name.endswith(".bias") or name.startswith("latent.")}

    # --- training -------------------------------------------------------------------------------------------

    def configure_optimizers(self, *, lr: float, weight_decay: float, fused: bool | None = None
                             ) -> dict[str, torch.optim.Optimizer]:
        """The model's optimizers by name; the checkpoint stores each under its name."""
        raise NotImplementedError

    def train_step(self, x: Tensor, step: int, optimizers: dict[str, torch.optim.Optimizer], *, clip: float,
                   rng: torch.Generator) -> dict[str, Tensor]:
        """One training iteration on the real batch `x` (step = updates done before it); returns the detached
        terms to log. `rng` is the loop's CPU generator for any sampling the step does (checkpointed)."""
        raise NotImplementedError

    def compile_for_training(self) -> None:
        """`train.compile`: compile what `train_step` spends its time in (default: nothing)."""

    # --- evaluation -----------------------------------------------------------------------------------------

    def eval_terms(self, x: Tensor, out: Reconstruction) -> dict[str, Tensor]:
        """The val/* terms of an evaluation batch, from its already computed forward pass."""
        raise NotImplementedError

    def traversal_start(self, x: Tensor, rng: torch.Generator) -> Tensor:
        """The one latent vector whose coordinates the traversal figure sweeps (default: the first image's)."""
        return self.encode(x[:1]).z_hat

    def samples(self, n: int, rng: torch.Generator) -> Tensor | None:
        """`n` images in [0, 1] drawn from the model's prior, or None for a model without one."""
        return None
