"""Tripod's networks: a residual encoder and a FiLM-conditioned residual decoder.

Facts from the authors' code (kylehkhsu/tripod: `disentangle/nn/encoder.py`, `decoder.py`, `layers.py`);
our own implementation. Four stages each way; the base width (32 in Tripod)
is a parameter so the same classes give a small CPU pair: channels base, 2·base, 4·base, 8·base, 16·base.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .networks import modulated_instance_norm

STAGES = 4  # each halves (encoder) or doubles (decoder) the side: images need a side divisible by 16
CONDITION = 256  # the decoder's conditioning vector, at Tripod's width whatever the base


class _ResidualBlock(nn.Module):
    """(conv3x3 -> per-channel GroupNorm (= instance norm, affine) -> GELU) twice, + identity or 1x1 skip."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv1, self.norm1 = nn.Conv2d(c_in, c_out, 3, padding=1), nn.GroupNorm(c_out, c_out)
        self.conv2, self.norm2 = nn.Conv2d(c_out, c_out, 3, padding=1), nn.GroupNorm(c_out, c_out)
        self.skip = nn.Identity() if c_in == c_out else nn.Conv2d(c_in, c_out, 1)

    def forward(self, x: Tensor) -> Tensor:
        h = F.gelu(self.norm1(self.conv1(x)))
        return F.gelu(self.norm2(self.conv2(h))) + self.skip(x)


class ResidualEncoder(nn.Module):
    """4 stages of 2 residual blocks then space-to-depth x2 + 1x1 conv; mean-pool; Linear+LayerNorm+GELU; Linear."""

    def __init__(self, out_dim: int, *, in_channels: int = 3, image_size: int = 64, base: int = 32) -> None:
        super().__init__()
        if image_size % 2**STAGES:
            raise ValueError(f"image size {image_size} is not divisible by {2**STAGES}")
        layers: list[nn.Module] = []
        c = in_channels
        for i in range(STAGES):
            w = base * 2**i
            layers += [_ResidualBlock(c, w), _ResidualBlock(w, w), nn.PixelUnshuffle(2), nn.Conv2d(4 * w, 2 * w, 1)]
            c = 2 * w
        self.trunk = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Linear(c, c), nn.LayerNorm(c), nn.GELU(), nn.Linear(c, out_dim))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.trunk(x).mean(dim=(2, 3)))


class _FiLMBlock(nn.Module):
    """(conv3x3 -> instance norm, no affine -> x(1 + scale) + shift from the condition -> GELU) twice, + identity."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.convs = nn.ModuleList([nn.Conv2d(c, c, 3, padding=1) for _ in range(2)])
        self.films = nn.ModuleList([nn.Linear(CONDITION, 2 * c) for _ in range(2)])

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        h = x
        for conv, film in zip(self.convs, self.films, strict=True):
            scale, shift = film(cond)[:, :, None, None].chunk(2, dim=1)
            h = F.gelu(modulated_instance_norm(conv(h), 1 + scale, shift, eps=1e-5))  # F.instance_norm's eps
        return h + x


class FiLMDecoder(nn.Module):
    """A learned 16·base x s x s input (ones), a conditioning MLP z -> 256 -> 256 (Linear+LayerNorm+GELU), and
    4 up-stages of 2 FiLM residual blocks then nearest x2 upsample + conv3x3, the last conv to the logits."""

    def __init__(self, in_dim: int, *, out_channels: int = 3, image_size: int = 64, base: int = 32) -> None:
        super().__init__()
        if image_size % 2**STAGES:
            raise ValueError(f"image size {image_size} is not divisible by {2**STAGES}")
        if image_size < 2 ** (STAGES + 1):
            # A 1x1 start would leave the first stage's instance norms nothing to normalise: they output 0.
            raise ValueError(f"image size {image_size} is too small for Tripod's FiLM decoder: it starts at "
                             f"image_size/{2**STAGES}, which must be at least 2 (image_size >= {2 ** (STAGES + 1)})")
        side, c = image_size // 2**STAGES, base * 2**STAGES
        self.constant = nn.Parameter(torch.ones(1, c, side, side))
        self.condition = nn.Sequential(nn.Linear(in_dim, CONDITION), nn.LayerNorm(CONDITION), nn.GELU(),
                                       nn.Linear(CONDITION, CONDITION), nn.LayerNorm(CONDITION), nn.GELU())
        self.stages = nn.ModuleList()
        self.ups = nn.ModuleList()
        for i in range(STAGES):
            out = out_channels if i == STAGES - 1 else c // 2
            self.stages.append(nn.ModuleList([_FiLMBlock(c), _FiLMBlock(c)]))
            self.ups.append(nn.Conv2d(c, out, 3, padding=1))
            c = out

    def _run(self, z: Tensor, stages: int) -> list[Tensor]:
        cond = self.condition(z)
        h = self.constant.expand(z.shape[0], -1, -1, -1)
        outputs = [cond]
        for blocks, up in zip(self.stages[:stages], self.ups[:stages], strict=True):
            for block in blocks:
                h = block(h, cond)
            h = up(F.interpolate(h, scale_factor=2, mode="nearest"))
            outputs.append(h)
        return outputs

    def forward(self, z: Tensor) -> Tensor:
        return self._run(z, STAGES)[-1]

    def hessian_layers(self, z: Tensor) -> list[Tensor]:
        """Tripod's NHP layers: the conditioning vector and the first three stages' outputs (not the logits)."""
        return self._run(z, STAGES - 1)
