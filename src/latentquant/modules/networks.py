"""Encoder and decoder networks: the paper's image encoder and style decoder, at any width.

Architecture facts (the authors' JAX code, kylehkhsu/latent_quantization: `disentangle/blocks`,
`configs/encoder_partial/image.yaml`, `configs/decoder_partial/style_image.yaml`; docs/models.md): bias-free
convolutions, per-sample per-channel instance norm with eps 1e-6, LeakyReLU 0.2; the decoder is a StyleGAN-like
stack of transposed convolutions modulated by a style vector computed from z.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

NORM_EPS = 1e-6
LEAKY_SLOPE = 0.2


def modulated_instance_norm(h: Tensor, scale: Tensor, shift: Tensor, eps: float = NORM_EPS) -> Tensor:
    """instance_norm(h) * scale + shift, with (B, C, 1, 1) scale and shift, as one affine map of h.

    Written out because F.instance_norm turns a channels-last map into NCHW (and its gradient back), copies
    that cost the CPU preset's step more than the norm itself; these element-wise ops keep h's format.
    """
    var, mean = torch.var_mean(h, dim=(2, 3), keepdim=True, correction=0)
    gain = scale * torch.rsqrt(var + eps)
    return torch.addcmul(shift - mean * gain, h, gain)


@dataclass(frozen=True)
class ConvStack:
    """Widths, kernels and strides of a conv trunk; padding is always 1."""

    widths: tuple[int, ...]
    kernels: tuple[int, ...]
    strides: tuple[int, ...]

    def __post_init__(self) -> None:
        if not (len(self.widths) == len(self.kernels) == len(self.strides)):
            raise ValueError("widths, kernels and strides must have the same length")

    @property
    def downsampling(self) -> int:
        return math.prod(self.strides)


def repeating_stack(widths: Sequence[int], per_stage: int = 3) -> ConvStack:
    """The paper's pattern: each stage is `per_stage` blocks, k3 s1 ... then a k4 s2 block halving size."""
    ws, ks, ss = [], [], []
    for w in widths:
        ws += [w] * per_stage
        ks += [3] * (per_stage - 1) + [4]
        ss += [1] * (per_stage - 1) + [2]
    return ConvStack(tuple(ws), tuple(ks), tuple(ss))


PAPER_STACK = repeating_stack((32, 64, 128, 256))


def _uniform_fan_in_(weight: Tensor, fan_in: int) -> None:
    bound = 1.0 / math.sqrt(fan_in)
    nn.init.uniform_(weight, -bound, bound)


class ConvBlock(nn.Module):
    """Conv (no bias) -> instance norm with affine -> LeakyReLU(0.2)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride, padding=1, bias=False)
        self.norm = nn.GroupNorm(c_out, c_out, eps=NORM_EPS)

    def forward(self, x: Tensor) -> Tensor:
        return F.leaky_relu(self.norm(self.conv(x)), LEAKY_SLOPE)


class ImageEncoder(nn.Module):
    """Conv trunk -> flatten -> dense ReLU layers (the `features`) -> linear head to `out_dim` numbers."""

    def __init__(
        self,
        out_dim: int,
        *,
        in_channels: int = 3,
        image_size: int = 64,
        stack: ConvStack = PAPER_STACK,
        dense: Sequence[int] = (256, 256),
    ) -> None:
        super().__init__()
        if image_size % stack.downsampling:
            raise ValueError(f"image size {image_size} is not divisible by the trunk's {stack.downsampling}")
        blocks, c = [], in_channels
        for w, k, s in zip(stack.widths, stack.kernels, stack.strides, strict=True):
            blocks.append(ConvBlock(c, w, k, s))
            c = w
        self.trunk = nn.Sequential(*blocks)
        side = image_size // stack.downsampling
        self.transition_shape = (c, side, side)
        layers, width = [], c * side * side
        for d in dense:
            layers += [nn.Linear(width, d), nn.ReLU()]
            width = d
        self.dense = nn.Sequential(*layers)
        self.features_dim = width
        self.head = nn.Linear(width, out_dim)

    def features(self, x: Tensor) -> Tensor:
        return self.dense(self.trunk(x).flatten(1))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


class CriticEncoder(ImageEncoder):
    """An ImageEncoder with a second head on the same features: the critic value V(x) of a WGAN.

    Sharing the trunk is the reference's design: the latent head and the critic train together.
    """

    def __init__(self, out_dim: int, **kwargs) -> None:
        super().__init__(out_dim, **kwargs)
        self.value = nn.Linear(self.features_dim, 1)

    def critique(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(latent head output (B, out_dim), critic value (B,)) from one pass through the trunk."""
        h = self.features(x)
        return self.head(h), self.value(h).squeeze(1)


class StyleBlock(nn.Module):
    """ConvTranspose (no bias) -> LeakyReLU -> instance norm (no affine) -> x * s + b, [s, b] = ReLU(Linear(w)).

    Activation before the norm and a plain (not 1 + s) scale, as in the reference.
    """

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, style_dim: int) -> None:
        super().__init__()
        self.conv = nn.ConvTranspose2d(c_in, c_out, kernel, stride, padding=1, bias=False)
        # PyTorch derives a transposed conv's fan-in from its output channels; the reference uses the input's.
        _uniform_fan_in_(self.conv.weight, c_in * kernel * kernel)
        self.style = nn.Linear(style_dim, 2 * c_out)
        self.channels = c_out

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        h = F.leaky_relu(self.conv(x), LEAKY_SLOPE)
        scale, shift = F.relu(self.style(w))[:, :, None, None].chunk(2, dim=1)
        return modulated_instance_norm(h, scale, shift)


class StyleDecoder(nn.Module):
    """Mapping MLP z -> w; a learned constant map (init 0.1) modulated block by block; 3x3 conv to logits."""

    def __init__(
        self,
        in_dim: int,
        *,
        out_channels: int = 3,
        image_size: int = 64,
        stack: ConvStack = PAPER_STACK,
        mapping: Sequence[int] = (256, 256),
    ) -> None:
        super().__init__()
        layers, width = [], in_dim
        for d in mapping:
            layers += [nn.Linear(width, d), nn.ReLU()]
            width = d
        self.mapping = nn.Sequential(*layers)
        # The decoder mirrors the encoder: reversed widths, the input map as wide as the encoder's last block.
        widths = tuple(reversed(stack.widths))
        kernels, strides = stack.kernels, stack.strides
        if image_size % stack.downsampling:
            raise ValueError(f"image size {image_size} is not divisible by the decoder's {stack.downsampling}")
        side = image_size // stack.downsampling
        self.constant = nn.Parameter(torch.full((1, widths[0], side, side), 0.1))
        blocks, c = [], widths[0]
        for w, k, s in zip(widths, kernels, strides, strict=True):
            blocks.append(StyleBlock(c, w, k, s, width))
            c = w
        self.blocks = nn.ModuleList(blocks)
        self.out = nn.Conv2d(c, out_channels, 3, 1, padding=1, bias=False)
        # Where each upsampling stage ends, the last one left out: it only feeds the output conv, as Tripod's
        # last stage feeds its logits, which its Hessian penalty excludes.
        self.stage_ends = [i for i, s in enumerate(strides) if s > 1][:-1]

    def forward(self, z: Tensor) -> Tensor:
        w = self.mapping(z)
        h = self.constant.expand(z.shape[0], -1, -1, -1)
        for block in self.blocks:
            h = block(h, w)
        return self.out(h)

    def hessian_layers(self, z: Tensor) -> list[Tensor]:
        """NHP's layers: the mapping output w (Tripod's conditioning vector) and every stage's output but the
        last's (at 64x64: 8x8, 16x16, 32x32, the sizes of Tripod's penalised blocks); runs only that far."""
        w = self.mapping(z)
        h = self.constant.expand(z.shape[0], -1, -1, -1)
        layers = [w]
        for i, block in enumerate(self.blocks[: self.stage_ends[-1] + 1] if self.stage_ends else []):
            h = block(h, w)
            if i in self.stage_ends:
                layers.append(h)
        return layers


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
