"""Disentanglement and reconstruction metrics: plain arrays in, floats and NumPy arrays out."""

from latentquant.metrics.dci import dci
from latentquant.metrics.dci_es import dci_es
from latentquant.metrics.factorvae import DatasetSampler, FactorSampler, factorvae_score
from latentquant.metrics.infomec import infomec
from latentquant.metrics.mig import mig
from latentquant.metrics.psnr import psnr
from latentquant.metrics.sap import sap
from latentquant.metrics.usage import codebook_usage, usage_entropy_bits

__all__ = ["DatasetSampler", "FactorSampler", "codebook_usage", "dci", "dci_es", "factorvae_score", "infomec", "mig",
           "psnr", "sap", "usage_entropy_bits"]
