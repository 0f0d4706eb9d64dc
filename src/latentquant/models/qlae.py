"""QLAE: the quantized-latent autoencoder of Hsu et al. (2023).

Loss = BCE + lambda_quant * quantization + lambda_commit * commitment, with a learnable scalar codebook
per latent dimension and strong weight decay (0.1) on encoder and decoder.
"""

from __future__ import annotations

from torch import nn

from ..quantize import GlobalScalarQuantizer, ScalarQuantizer
from .base import Autoencoder
from .registry import ModelParts, register


def build_qlae(
    parts: ModelParts,
    num_latents: int,
    *,
    num_values: int = 10,
    learn_values: bool = True,
    lambda_quant: float = 0.01,
    lambda_commit: float = 0.01,
    global_codebook: bool = False,
    **_: object,
) -> nn.Module:
    quantizer = GlobalScalarQuantizer if global_codebook else ScalarQuantizer
    latent = quantizer(num_latents, num_values, learn_values=learn_values)
    encoder, decoder = parts.make(latent.num_inputs, num_latents)
    weights = {"bce": 1.0, "quantization": lambda_quant, "commitment": lambda_commit}
    return Autoencoder(encoder, latent, decoder, weights)


_QLAE = dict(lambda_quant=0.01, lambda_commit=0.01)
register("qlae", weight_decay=0.1, **_QLAE)(build_qlae)
# The paper's ablations: one codebook shared by all latents, no weight decay, fixed (not learned) values.
register("qlae_global", weight_decay=0.1, global_codebook=True, **_QLAE)(build_qlae)
register("qlae_no_wd", weight_decay=0.0, **_QLAE)(build_qlae)
register("qlae_fixed", weight_decay=0.1, learn_values=False, **_QLAE)(build_qlae)
