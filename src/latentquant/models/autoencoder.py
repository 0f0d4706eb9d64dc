"""The autoencoder every AE-family objective is made of: encoder -> latent module -> decoder.

An objective is a set of loss weights over the terms that the parts produce: the reconstruction term
(`bce`) and whatever the latent module returns (quantization, commitment, ...). So QLAE and AE differ
only in their latent module and weights, and new objectives are new combinations, not new loops.

Three terms compose with any of them: ``klm``, the kernel multiinformation of the latents, and ``nhp``, the
decoder's normalized Hessian penalty (Tripod's legs 2 and 3), and ``tc``, FactorVAE's total correlation
estimated by a discriminator on the decoder's input with its own optimizer (Kim & Mnih 2018). They are
computed only when weighted, so an objective that does not use them pays nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ..modules.discriminator import TotalCorrelationDiscriminator, permute_dims
from ..modules.klm import kernel_multiinformation
from ..modules.latents import LatentOutput
from ..modules.nhp import normalized_hessian_penalty
from .base import LatentModel, Reconstruction, bce_per_pixel, compiled_or_eager, weighted_sum
from .optim import make_optimizer, step_on

COMPOSABLE_TERMS = ("klm", "nhp", "tc")
EVAL_SEED = 0
TC = "total_correlation"  # the logged term and its weight's name; `tc` is the config key that adds it


class Autoencoder(LatentModel):
    """Encoder, latent module and decoder with the weights that make them an objective.

    ``weights`` maps term names to multipliers: ``bce`` for reconstruction and any name that the latent
    module returns in ``LatentOutput.losses``. A latent term without a weight is an error, so an
    objective never silently drops a loss. A positive weight on ``klm`` or ``nhp`` (COMPOSABLE_TERMS) adds
    that batch term. Without a discriminator: one optimizer, one update per batch.

    With a ``discriminator`` (weight ``total_correlation``, added by ``add_terms(tc=γ)`` or given by a
    FactorVAE-style model), each step splits the batch as Kim & Mnih's algorithm does: the first half updates
    the autoencoder on its objective + γ·TC, with TC = mean(D_0 − D_1) on its codes; the second half, encoded
    again after that update and permuted dimension-wise, trains the discriminator against the first half's
    codes with the discriminator's own optimizer.
    """

    def __init__(self, encoder: nn.Module, latent: nn.Module, decoder: nn.Module, weights: dict[str, float],
                 discriminator: TotalCorrelationDiscriminator | None = None, *,
                 discriminator_betas: tuple[float, float] = (0.9, 0.999)) -> None:
        super().__init__()
        self.encoder = encoder
        self.latent = latent
        self.decoder = decoder
        self.weights = dict(weights)
        self.discriminator = discriminator
        self.discriminator_betas = discriminator_betas
        self._loss = self.loss_and_codes

    def loss(self, x: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """Weighted objective (γ·TC included) and its unweighted terms (detached) for logging."""
        loss, terms, _ = self.loss_and_codes(x)
        return loss, terms

    def encode_codes(self, x: Tensor) -> tuple[LatentOutput, Tensor]:
        """The latent output of images and what a discriminator reads of it."""
        return self.latent_codes(self.encoder(x))

    def latent_codes(self, h: Tensor) -> tuple[LatentOutput, Tensor]:
        """The latent output of encodings `h` and what a discriminator reads: the decoder's input."""
        out = self.latent(h)
        return out, out.z_hat

    @torch.no_grad()
    def _code_size(self) -> int:
        """Numbers per sample a discriminator reads: a probe of the latent module in evaluation mode (which
        draws nothing, so the model's seeded initialisation is unchanged)."""
        was_training = self.latent.training
        self.latent.eval()
        try:
            device = next(self.parameters()).device
            return self.latent_codes(torch.zeros(2, self.latent.num_inputs, device=device))[1][0].numel()
        finally:
            self.latent.train(was_training)

    def loss_and_codes(self, x: Tensor) -> tuple[Tensor, dict[str, Tensor], Tensor]:
        """The objective on `x`, its terms, and the codes a discriminator step needs."""
        latent, codes = self.encode_codes(x)
        loss, terms = self.objective(x, Reconstruction(logits=self.decoder(latent.z_hat), latent=latent))
        if self.discriminator is not None:
            # The penalty trains the encoder only: the discriminator's weights are frozen in it.
            tc = self.discriminator.total_correlation(codes, frozen=True)
            loss = loss + self.weights[TC] * tc
            terms[TC] = tc.detach()
            terms["loss"] = loss.detach()
        return loss, terms, codes

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
        """Weight composable terms (a zero weight leaves a term off, and uncomputed); returns self.

        ``tc`` builds a discriminator (Kim & Mnih's 6 layers of 1000 units) on the decoder's input the first
        time it is weighted; a model with its own discriminator (FactorVAE's) refuses it.
        """
        unknown = set(weights) - set(COMPOSABLE_TERMS)
        if unknown:
            raise KeyError(f"no composable terms {sorted(unknown)}; there are {', '.join(COMPOSABLE_TERMS)}")
        for name, weight in weights.items():
            if name == "tc":
                self._add_total_correlation(float(weight))
            elif weight:
                self.weights[name] = float(weight)
            else:
                self.weights.pop(name, None)
        return self

    def _add_total_correlation(self, weight: float) -> None:
        if not weight:
            return
        if self.discriminator is not None:
            raise ValueError("this model already has its own total-correlation discriminator; its weight is "
                             "the model's own gamma")
        self.discriminator = TotalCorrelationDiscriminator(self._code_size())
        self.weights[TC] = weight

    def configure_optimizers(self, *, lr: float, weight_decay: float, fused: bool | None = None
                             ) -> dict[str, torch.optim.Optimizer]:
        """The autoencoder's optimizer and, with a discriminator, the discriminator's: each owns its part."""
        if self.discriminator is None:
            return {"model": make_optimizer(self, lr=lr, weight_decay=weight_decay, fused=fused)}
        return {"model": make_optimizer(self, lr=lr, weight_decay=weight_decay, fused=fused,
                                        only=["encoder", "latent", "decoder"]),
                # Weight decay is the autoencoder's inductive bias (QLAE's), not the estimator's.
                "discriminator": make_optimizer(self, lr=lr, weight_decay=0.0, fused=fused,
                                                betas=self.discriminator_betas, only=["discriminator"])}

    def train_step(self, x: Tensor, step: int, optimizers: dict[str, torch.optim.Optimizer], *, clip: float,
                   rng: torch.Generator) -> dict[str, Tensor]:
        if self.discriminator is None:
            loss, terms, _ = self._loss(x)
            step_on(optimizers["model"], loss, clip)
            return terms
        if x.shape[0] < 2:
            raise ValueError("FactorVAE-style training splits each batch in two: it needs a batch of 2 or more")
        half = (x.shape[0] + 1) // 2
        loss, terms, codes = self._loss(x[:half])
        step_on(optimizers["model"], loss, clip)
        with torch.no_grad():  # re-encoded by the updated encoder, as in Kim & Mnih's algorithm
            _, other = self.encode_codes(x[half:])
        d_loss = self.discriminator.loss(codes.detach(), permute_dims(other, rng))
        step_on(optimizers["discriminator"], d_loss, clip)
        terms["discriminator"] = d_loss.detach()
        return terms

    def compile_for_training(self) -> None:
        self._loss = compiled_or_eager(self.loss_and_codes)

    def eval_terms(self, x: Tensor, out: Reconstruction) -> dict[str, Tensor]:
        terms = self.objective(x, out)[1]
        if self.discriminator is not None:
            # Evaluation codes are exact (one-hots, posterior means, hard quantized values): a diagnostic.
            _, codes = self.encode_codes(x)
            terms[TC] = self.discriminator.total_correlation(codes).detach()
        return terms
