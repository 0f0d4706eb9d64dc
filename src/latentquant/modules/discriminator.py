"""The total-correlation discriminator of FactorVAE (Kim & Mnih 2018), also used by FactorQVAE.

An MLP tells codes drawn jointly, q(z), from codes whose dimensions were shuffled independently across the
batch, which samples the product of the marginals Π_j q(z_j). With logit 0 for "joint" and logit 1 for
"permuted", the density-ratio trick gives TC(z) = KL(q(z) ‖ Π_j q(z_j)) ≈ E_q[D_0(z) − D_1(z)].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def permute_dims(codes: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """`codes` (B, D, ...) with each latent dimension j shuffled across the batch by its own permutation.

    The permutations are drawn on the CPU so that a seeded CPU generator gives the same ones on any device.
    """
    batch, dims = codes.shape[:2]
    order = torch.rand(batch, dims, generator=generator).argsort(dim=0).to(codes.device)
    order = order.view(batch, dims, *([1] * (codes.ndim - 2))).expand_as(codes)
    return codes.gather(0, order)


class TotalCorrelationDiscriminator(nn.Module):
    """`layers` linear layers of `width` units with LeakyReLU(0.2) between them, two logits out.

    Reads codes (B, D) or (B, D, K) (a relaxed one-hot per latent), flattened to `num_inputs` numbers.
    The defaults are Kim & Mnih's: 6 layers of 1000 units.
    """

    def __init__(self, num_inputs: int, *, width: int = 1000, layers: int = 6) -> None:
        super().__init__()
        if layers < 1:
            raise ValueError(f"the discriminator needs at least one layer, got {layers}")
        self.num_inputs = num_inputs
        sizes = [num_inputs] + [width] * (layers - 1) + [2]
        blocks: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
            blocks.append(nn.Linear(a, b))
            if i < layers - 1:
                blocks.append(nn.LeakyReLU(0.2))
        self.net = nn.Sequential(*blocks)

    def forward(self, codes: Tensor, *, frozen: bool = False) -> Tensor:
        """Logits (B, 2). `frozen`: gradient flows to the codes but not to the discriminator's own weights,
        so the autoencoder's TC penalty costs no weight gradients it would throw away."""
        flat = codes.flatten(1)
        if not frozen:
            return self.net(flat)
        params = {name: p.detach() for name, p in self.net.named_parameters()}
        return torch.func.functional_call(self.net, params, (flat,))

    def total_correlation(self, codes: Tensor, *, frozen: bool = True) -> Tensor:
        """The density-ratio estimate mean(D_0 − D_1) of TC over a batch of jointly drawn codes."""
        logits = self(codes, frozen=frozen)
        return (logits[:, 0] - logits[:, 1]).mean()

    def loss(self, joint: Tensor, permuted: Tensor) -> Tensor:
        """Cross-entropy of joint codes (class 0) against dimension-wise permuted codes (class 1), each half
        weighted equally whatever the two batch sizes."""
        zeros = torch.zeros(joint.shape[0], dtype=torch.long, device=joint.device)
        ones = torch.ones(permuted.shape[0], dtype=torch.long, device=permuted.device)
        return 0.5 * (F.cross_entropy(self(joint), zeros) + F.cross_entropy(self(permuted), ones))
