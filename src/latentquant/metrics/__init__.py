"""Disentanglement and reconstruction metrics: plain arrays in, floats and NumPy arrays out."""

from .dci import dci
from .dci_es import dci_es
from .factorvae import FactorSampler, factorvae_score
from .infomec import infomec
from .mig import mig
from .psnr import psnr
from .sap import sap
from .suite import array_metrics
from .usage import codebook_usage, usage_entropy_bits

__all__ = ["FactorSampler", "array_metrics", "codebook_usage", "dci", "dci_es", "factorvae_score",
           "infomec", "mig", "psnr", "sap", "usage_entropy_bits"]
