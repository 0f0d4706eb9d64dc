"""QLAE: the quantized-latent autoencoder of Hsu et al. (2023), and the paper's three ablations.

Loss = BCE + lambda_quant * quantization + lambda_commit * commitment, with a learnable scalar codebook
per latent dimension and strong weight decay (0.1) on encoder and decoder.
"""

from __future__ import annotations

from ..modules.quantizers import GlobalScalarQuantizer, ScalarQuantizer
from .autoencoder import Autoencoder
from .registry import ModelParts, register


def build_qlae(parts: ModelParts, num_latents: int, *, num_values: int = 10, learn_values: bool = True,
               lambda_quant: float = 0.01, lambda_commit: float = 0.01, global_codebook: bool = False
               ) -> Autoencoder:
    quantizer = GlobalScalarQuantizer if global_codebook else ScalarQuantizer
    latent = quantizer(num_latents, num_values, learn_values=learn_values)
    weights = {"bce": 1.0, "quantization": lambda_quant, "commitment": lambda_commit}
    return Autoencoder(parts.encoder(latent.num_inputs), latent, parts.decoder(num_latents), weights)


register("qlae", build_qlae, weight_decay=0.1)
# The paper's ablations: one codebook shared by all latents, no weight decay, fixed (not learned) values.
register("qlae_global", build_qlae, weight_decay=0.1, global_codebook=True)
register("qlae_no_wd", build_qlae, weight_decay=0.0)
register("qlae_fixed", build_qlae, weight_decay=0.1, learn_values=False)
