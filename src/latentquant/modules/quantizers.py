"""Latent quantization: a small learnable scalar codebook for every latent dimension (and FactorQVAE's relaxed one).

The quantizer of Hsu et al. (2023). Each latent dimension j owns its own sorted-at-init codebook V_j;
an encoder output z_j is replaced by the nearest value of V_j. Gradients reach the encoder through the
straight-through estimator, and the codebook values move only through the quantization loss.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .latents import LatentOutput


class ScalarQuantizer(nn.Module):
    """Per-dimension learnable scalar codebooks with straight-through gradients.

    Args:
        num_latents: number of latent dimensions D.
        num_values: values per dimension: one int for all, or a list of D ints.
        value_range: codebooks start evenly spaced on this interval.
        learn_values: if False the codebooks stay at their initial values.

    ``forward(z)`` takes (B, D) continuous encodings and returns a :class:`LatentOutput` whose ``z_hat``
    equals the quantized values in the forward pass, with ``losses['quantization']`` =
    mean_j (sg(z_j) - q_j)^2 (moves the codebooks) and ``losses['commitment']`` = mean_j (z_j - sg(q_j))^2
    (moves the encoder), both averaged over the batch.
    """

    discrete = True

    def __init__(
        self,
        num_latents: int,
        num_values: int | Sequence[int] = 10,
        *,
        value_range: tuple[float, float] = (-0.5, 0.5),
        learn_values: bool = True,
    ) -> None:
        super().__init__()
        sizes = [int(num_values)] * num_latents if isinstance(num_values, int) else [int(n) for n in num_values]
        if len(sizes) != num_latents:
            raise ValueError(f"num_values has {len(sizes)} entries for {num_latents} latents")
        if min(sizes) < 1:
            raise ValueError(f"every latent needs at least one value, got {sizes}")
        self.num_latents = num_latents
        self.num_values = sizes
        self.learn_values = learn_values
        # Ragged codebooks are stored padded to the largest size; padding sits at +inf distance so the
        # argmin never picks it, and a mask keeps it out of everything else.
        width = max(sizes)
        low, high = value_range
        values = torch.zeros(num_latents, width)
        mask = torch.zeros(num_latents, width, dtype=torch.bool)
        for j, n in enumerate(sizes):
            values[j, :n] = torch.linspace(low, high, n) if n > 1 else torch.tensor([(low + high) / 2])
            mask[j, :n] = True
        self.values = nn.Parameter(values, requires_grad=learn_values)
        self.register_buffer("valid", mask, persistent=False)

    @property
    def num_inputs(self) -> int:
        """How many numbers the encoder must emit."""
        return self.num_latents

    def codebook(self, j: int) -> Tensor:
        """The current values of latent j (without padding)."""
        return self.values[j, : self.num_values[j]]

    def sweep(self, j: int, representations: np.ndarray, n: int) -> Tensor | None:
        """Latent j's codebook values: a traversal row shows every value the decoder can receive."""
        return self.codebook(j).detach()

    def codebook_sizes(self) -> list[int] | None:
        return list(self.num_values)

    def codebook_values(self) -> list[Tensor] | None:
        return [self.codebook(j).detach() for j in range(self.num_latents)]

    def quantize_indices(self, z: Tensor) -> Tensor:
        """Index of the nearest codebook value, per dimension: (B, D) long."""
        distance = (z.detach().unsqueeze(-1) - self.values.detach()).abs()
        distance = distance.masked_fill(~self.valid, float("inf"))
        return distance.argmin(dim=-1)

    def lookup(self, indices: Tensor) -> Tensor:
        """Codebook values for (B, D) indices; differentiable with respect to the values."""
        values = self.values.expand(indices.shape[0], -1, -1)
        return values.gather(-1, indices.unsqueeze(-1)).squeeze(-1)

    def forward(self, z: Tensor) -> LatentOutput:
        if z.ndim != 2 or z.shape[1] != self.num_latents:
            raise ValueError(f"expected encodings of shape (batch, {self.num_latents}), got {tuple(z.shape)}")
        indices = self.quantize_indices(z)
        q = self.lookup(indices)
        losses = {
            "quantization": (z.detach() - q).square().mean(),
            "commitment": (z - q.detach()).square().mean(),
        }
        z_hat = z + (q - z).detach()
        # `continuous`: KLM takes its bandwidths from the unquantized encodings, as Tripod does from FSQ's z_c.
        return LatentOutput(z_hat=z_hat, representation=q.detach(), losses=losses, indices=indices, continuous=z)

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> Tensor:
        """Prior sample: a uniformly chosen value of every dimension's codebook (gradient reaches it)."""
        sizes = torch.tensor(self.num_values, dtype=torch.float64)
        u = torch.rand(batch_size, self.num_latents, generator=generator, dtype=torch.float64)
        indices = (u * sizes).long().clamp_max(sizes.long() - 1).to(self.values.device)
        return self.lookup(indices)

    def extra_repr(self) -> str:
        return f"num_latents={self.num_latents}, num_values={self.num_values}, learn_values={self.learn_values}"


class GlobalScalarQuantizer(ScalarQuantizer):
    """One scalar codebook shared by every latent dimension (the paper's "global codebook" ablation)."""

    def __init__(self, num_latents: int, num_values: int = 10, *, value_range: tuple[float, float] = (-0.5, 0.5),
                 learn_values: bool = True) -> None:
        super().__init__(1, num_values, value_range=value_range, learn_values=learn_values)
        self.num_latents = num_latents
        self.num_values = [int(num_values)] * num_latents

    def codebook(self, j: int) -> Tensor:
        return self.values[0]

    def quantize_indices(self, z: Tensor) -> Tensor:
        return (z.detach().unsqueeze(-1) - self.values[0].detach()).abs().argmin(dim=-1)

    def lookup(self, indices: Tensor) -> Tensor:
        return self.values[0][indices]


class VectorQuantizer(nn.Module):
    """VQ-VAE's latent: `num_latents` slots of `embedding_dim` numbers, each snapped to the nearest of
    `num_embeddings` shared vectors (squared Euclidean), straight-through; the metrics see the integer codes.

    Embeddings start U(-sqrt(3/E), sqrt(3/E)) (variance 1/E) as the reference; no EMA updates, no resets.
    Losses are means over all num_latents * embedding_dim coordinates.
    """

    discrete = True

    def __init__(self, num_latents: int, num_embeddings: int = 512, embedding_dim: int = 64) -> None:
        super().__init__()
        self.num_latents, self.num_embeddings, self.embedding_dim = num_latents, num_embeddings, embedding_dim
        bound = (3.0 / embedding_dim) ** 0.5
        self.embeddings = nn.Parameter(torch.empty(num_embeddings, embedding_dim).uniform_(-bound, bound))

    @property
    def num_inputs(self) -> int:
        return self.num_latents * self.embedding_dim

    def sweep(self, j: int, representations: np.ndarray, n: int) -> Tensor | None:
        """None: a slot's code is a vector, with no scalar axis to sweep (the reference skips its traversals)."""
        return None

    def codebook_sizes(self) -> list[int] | None:
        return [self.num_embeddings] * self.num_latents  # every slot picks from one shared codebook

    def codebook_values(self) -> list[Tensor] | None:
        return None

    def forward(self, h: Tensor) -> LatentOutput:
        z = h.view(h.shape[0], self.num_latents, self.embedding_dim)
        e, zd = self.embeddings, z.detach()
        distance = zd.square().sum(-1, keepdim=True) - 2 * zd @ e.detach().T + e.detach().square().sum(1)
        indices = distance.argmin(-1)
        q = e[indices]
        losses = {"quantization": (z.detach() - q).square().mean(), "commitment": (z - q.detach()).square().mean()}
        z_hat = (z + (q - z).detach()).flatten(1)
        return LatentOutput(z_hat=z_hat, representation=indices, losses=losses, indices=indices)


class GumbelScalarQuantizer(nn.Module):
    """FactorQVAE's relaxed quantizer: one global scalar codebook of `num_values` entries, N(0, 1) at init.

    Each encoder scalar z_j scores the codes by −|z_j − e_c|. Training draws a Gumbel-softmax relaxation
    q_j = softmax((−|z_j − e| + g) / τ) and the decoder gets the mixture Σ_c q_jc e_c (so gradient reaches the
    encoder and the codebook without a straight-through estimator); evaluation takes the nearest code.
    ``losses['kl']`` = KL(softmax(−|z_j − e|) ‖ Uniform(K)), averaged over latents and batch. ``temperature``
    (τ, a 0-d buffer) is set by the model from the step; it matters only in training.
    """

    discrete = True

    def __init__(self, num_latents: int, num_values: int = 64) -> None:
        super().__init__()
        if num_values < 2:
            raise ValueError(f"a relaxed codebook needs at least two values, got {num_values}")
        self.num_latents = num_latents
        self.num_values = int(num_values)
        self.values = nn.Parameter(torch.randn(self.num_values))
        # A tensor, not a float, so that a compiled step reads it as an input instead of recompiling each time
        # it changes; not persistent, because the model sets it from the step before every training step.
        self.register_buffer("temperature", torch.tensor(1.0), persistent=False)

    @property
    def num_inputs(self) -> int:
        return self.num_latents

    def sweep(self, j: int, representations: np.ndarray, n: int) -> Tensor | None:
        """`n` of the codebook's values, evenly spread over its sorted order (all 64 would be a wide figure)."""
        ordered = self.values.detach().sort().values
        if n >= len(ordered):
            return ordered
        return ordered[torch.linspace(0, len(ordered) - 1, n).round().long()]

    def codebook_sizes(self) -> list[int] | None:
        return [self.num_values] * self.num_latents

    def codebook_values(self) -> list[Tensor] | None:
        return [self.values.detach()] * self.num_latents

    def forward(self, z: Tensor) -> LatentOutput:
        return self.forward_with_codes(z)[0]

    def forward_with_codes(self, z: Tensor) -> tuple[LatentOutput, Tensor]:
        """The latent output and the codes a total-correlation discriminator reads: (B, D, K) one-hots,
        relaxed (Gumbel-softmax samples) in training, exact in evaluation."""
        if z.ndim != 2 or z.shape[1] != self.num_latents:
            raise ValueError(f"expected encodings of shape (batch, {self.num_latents}), got {tuple(z.shape)}")
        scores = -(z.unsqueeze(-1) - self.values).abs()  # (B, D, K)
        indices = scores.detach().argmax(-1)
        log_q = scores.log_softmax(-1)
        kl = (log_q.exp() * (log_q + math.log(self.num_values))).sum(-1).mean()
        quantized = self.values.detach()[indices]
        if self.training:
            codes = F.gumbel_softmax(scores, tau=self.temperature, hard=False)
            z_hat = codes @ self.values
        else:
            codes = F.one_hot(indices, self.num_values).to(z.dtype)
            z_hat = self.values[indices]
        out = LatentOutput(z_hat=z_hat, representation=quantized, losses={"kl": kl}, indices=indices)
        return out, codes

    def extra_repr(self) -> str:
        return f"num_latents={self.num_latents}, num_values={self.num_values} (one global codebook)"


class FiniteScalarQuantizer(nn.Module):
    """Tripod's finite scalar quantization: z_c = tanh(e), rounded on a fixed grid of `num_values` levels.

    z_c in [-1, 1] is scaled to [0, L-1], rounded with a straight-through estimator and mapped back, so the
    levels are -1 + 2k/(L-1): with the default L = 12 that is +-0.091, +-0.273, ..., +-1 (no zero level).
    No half-level offset in the bound, unlike Mentzer et al.'s FSQ: Tripod's code has none. No parameters and
    no loss terms; ``continuous`` carries z_c for KLM's bandwidths. The metrics see the quantized values.
    """

    discrete = True

    def __init__(self, num_latents: int, num_values: int = 12) -> None:
        super().__init__()
        if num_values < 2:
            raise ValueError(f"FSQ needs at least 2 levels, got {num_values}")
        self.num_latents = num_latents
        self.num_values = int(num_values)

    @property
    def num_inputs(self) -> int:
        return self.num_latents

    def levels(self) -> Tensor:
        """The L grid values, ascending."""
        return torch.linspace(-1.0, 1.0, self.num_values)

    def sweep(self, j: int, representations: np.ndarray, n: int) -> Tensor | None:
        return self.levels()

    def codebook_sizes(self) -> list[int] | None:
        return [self.num_values] * self.num_latents

    def codebook_values(self) -> list[Tensor] | None:
        return [self.levels() for _ in range(self.num_latents)]

    def forward(self, e: Tensor) -> LatentOutput:
        if e.ndim != 2 or e.shape[1] != self.num_latents:
            raise ValueError(f"expected encodings of shape (batch, {self.num_latents}), got {tuple(e.shape)}")
        z_c = torch.tanh(e)
        top = self.num_values - 1
        scaled = (z_c + 1) * (top / 2)
        rounded = torch.round(scaled)
        indices = rounded.detach().long()
        z_q = (scaled + (rounded - scaled).detach()) * (2 / top) - 1
        return LatentOutput(z_hat=z_q, representation=z_q.detach(), losses={}, indices=indices, continuous=z_c)

    def extra_repr(self) -> str:
        return f"num_latents={self.num_latents}, num_values={self.num_values}"
