"""Latent modules: what sits between encoder and decoder, and the interface they share.

A latent module maps the encoder's output to ``z_hat`` for the decoder, names the representation the
metrics score, and returns its own unweighted loss terms. Objectives weight those terms, so any latent
combines with any encoder, decoder and objective.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn


@dataclass
class LatentOutput:
    """What every latent module returns.

    ``z_hat`` goes to the decoder; ``representation`` is what the metrics see; ``losses`` are the
    unweighted latent-specific terms that the objective weights (e.g. quantization, commitment).
    """

    z_hat: Tensor
    representation: Tensor
    losses: dict[str, Tensor]
    indices: Tensor | None = None



class ContinuousLatent(nn.Module):
    """The identity latent of a plain autoencoder: the decoder sees the encoder output as it is."""

    discrete = False

    def __init__(self, num_latents: int) -> None:
        super().__init__()
        self.num_latents = num_latents

    @property
    def num_inputs(self) -> int:
        return self.num_latents

    def forward(self, z: Tensor) -> LatentOutput:
        return LatentOutput(z_hat=z, representation=z.detach(), losses={})
