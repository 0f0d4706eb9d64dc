"""Reconstruction quality: peak signal-to-noise ratio for images with values in [0, 1]."""

from __future__ import annotations

import numpy as np

# Identical images have MSE 0 and infinite PSNR, which would swallow any average; flooring the MSE at 1e-10
# caps one image's PSNR at 100 dB, far above anything a model reaches (8-bit quantisation alone is ~59 dB).
MIN_MSE = 1e-10


def psnr(target, reconstruction) -> float:
    """Mean over images of the per-image PSNR = -10 log10(MSE), for pixel values in [0, 1] (peak 1).

    ``target`` and ``reconstruction`` are NumPy arrays or torch tensors (any device, gradients ignored) of
    the same shape (N, ...): the first axis indexes images, the MSE of each image is taken over all the
    other axes, in float64. Each image's MSE is floored at ``MIN_MSE`` (1e-10), so identical images score
    100 dB instead of inf. Values are not clipped: rescale 0..255 images to [0, 1] first.
    """
    t = _as_float64(target, "target")
    r = _as_float64(reconstruction, "reconstruction")
    if t.shape != r.shape:
        raise ValueError(f"target and reconstruction must have the same shape, got {t.shape} and {r.shape}")
    if t.ndim < 2 or t.shape[0] == 0:
        raise ValueError(f"expected a batch of images (N, ...) with N >= 1, got shape {t.shape}")
    mse = np.square(t - r).reshape(t.shape[0], -1).mean(axis=1)
    return float(np.mean(-10.0 * np.log10(np.maximum(mse, MIN_MSE))))


def _as_float64(images, name: str) -> np.ndarray:
    if hasattr(images, "detach"):  # a torch tensor, without importing torch
        images = images.detach().cpu().numpy()
    array = np.asarray(images, dtype=np.float64)
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or inf")
    return array
