"""Tripod (Hsu, Ibn Hamid, Burns, Finn, Wu; ICML 2024; arXiv 2404.10282; kylehkhsu/tripod) and its leg ablations.

Loss = BCE + lambda_KLM * KLM + lambda_NHP * NHP on an FSQ latent (12 levels per latent), AdamW at lr 2e-4
without weight decay, batch 64, element-wise gradient clip 1. Its legs are the FSQ latent
(modules.quantizers.FiniteScalarQuantizer) and the two composable terms `klm` and `nhp` of every
autoencoder (models.autoencoder), so an ablation is a default changed. Defaults are the authors' Shapes3D
weights; the other datasets' are presets. By default Tripod runs on the QLAE networks that every model here
shares; `model.residual=true` gives it Tripod's own residual encoder and FiLM decoder (modules.residual), at
a base width of `model.widths[0]` (32 at the paper preset, as Tripod).
"""

from __future__ import annotations

from ..modules.latents import ContinuousLatent
from ..modules.quantizers import FiniteScalarQuantizer
from ..modules.residual import FiLMDecoder, ResidualEncoder
from .autoencoder import Autoencoder
from .registry import ModelParts, register


def build_tripod(parts: ModelParts, num_latents: int, *, num_values: int = 12, quantize: bool = True,
                 residual: bool = False) -> Autoencoder:
    latent = FiniteScalarQuantizer(num_latents, num_values) if quantize else ContinuousLatent(num_latents)
    encoder, decoder = parts.encoder(latent.num_inputs), parts.decoder(num_latents)
    if residual:  # your own networks, when given, still win
        base = parts.stack.widths[0]
        if parts.user_encoder is None:
            encoder = ResidualEncoder(latent.num_inputs, in_channels=parts.in_channels, image_size=parts.image_size,
                                      base=base)
        if parts.user_decoder is None:
            decoder = FiLMDecoder(num_latents, out_channels=parts.in_channels, image_size=parts.image_size, base=base)
    return Autoencoder(encoder, latent, decoder, {"bce": 1.0})


_TRAIN = dict(lr=2e-4, batch_size=64)
_WEIGHTS = dict(klm=1e-4, nhp=1e-2)  # Shapes3D, the authors' active sweep
register("tripod", build_tripod, weight_decay=0.0, train=_TRAIN, **_WEIGHTS)
# Each leg removed: the continuous (unquantized) latent, no KLM, no NHP.
register("tripod_no_fsq", build_tripod, weight_decay=0.0, train=_TRAIN, fixed=dict(quantize=False, num_values=12),
         **_WEIGHTS)
register("tripod_no_klm", build_tripod, weight_decay=0.0, train=_TRAIN, **{**_WEIGHTS, "klm": 0.0})
register("tripod_no_nhp", build_tripod, weight_decay=0.0, train=_TRAIN, **{**_WEIGHTS, "nhp": 0.0})
