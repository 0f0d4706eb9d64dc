"""Disentanglement and reconstruction metrics: plain arrays in, floats and NumPy arrays out."""

from latentquant.metrics.infomec import infomec
from latentquant.metrics.psnr import psnr

__all__ = ["infomec", "psnr"]
