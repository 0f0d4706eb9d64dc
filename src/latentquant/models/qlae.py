"""QLAE: the quantized-latent autoencoder of Hsu et al. (2023).

Loss = BCE + lambda_quant * quantization + lambda_commit * commitment, with a learnable scalar codebook
per latent dimension and strong weight decay (0.1) on encoder and decoder.
"""

from __future__ import annotations

from torch import nn

from ..quantize import ScalarQuantizer
from .base import Autoencoder
from .registry import ModelParts, register


@register("qlae", weight_decay=0.1, lambda_quant=0.01, lambda_commit=0.01)
def build_qlae(
    parts: ModelParts,
    num_latents: int,
    *,
    num_values: int = 10,
    learn_values: bool = True,
    lambda_quant: float = 0.01,
    lambda_commit: float = 0.01,
    **_: object,
) -> nn.Module:
    latent = ScalarQuantizer(num_latents, num_values, learn_values=learn_values)
    encoder, decoder = parts.make(latent.num_inputs, num_latents)
    weights = {"bce": 1.0, "quantization": lambda_quant, "commitment": lambda_commit}
    return Autoencoder(encoder, latent, decoder, weights)
