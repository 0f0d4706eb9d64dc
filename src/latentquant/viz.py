"""Figures written at every evaluation: NMI heatmap, latent traversals, reconstructions.

Matplotlib with the Agg backend only, so figures work on headless machines; image grids are written
with Pillow directly so they keep their exact pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image


def image_grid(images: np.ndarray, *, pad: int = 1, pad_value: int = 255) -> np.ndarray:
    """(rows, cols, H, W, C) uint8 -> one (rows*H + gaps, cols*W + gaps, C) image."""
    rows, cols, h, w, c = images.shape
    out = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, c), pad_value, dtype=np.uint8)
    for r in range(rows):
        for col in range(cols):
            y, x = pad + r * (h + pad), pad + col * (w + pad)
            out[y : y + h, x : x + w] = images[r, col]
    return out


def save_grid(images: np.ndarray, path: Path, *, scale: int = 2) -> None:
    """Save a (rows, cols, H, W, C) uint8 grid as PNG, upscaled by `scale` (nearest) for visibility."""
    grid = image_grid(images)
    if grid.shape[-1] == 1:
        grid = grid[..., 0]
    img = Image.fromarray(grid)
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    img.save(path)


def save_nmi_heatmap(
    nmi: np.ndarray, active: np.ndarray, path: Path, *, factor_names: Sequence[str] | None = None,
    title: str = "",
) -> None:
    """NMI matrix as the paper draws it: latents as rows, sources as columns, inactive latents in red."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mat = np.asarray(nmi).T  # (D, K)
    d, k = mat.shape
    names = list(factor_names) if factor_names is not None else [f"s{i}" for i in range(k)]
    fig, ax = plt.subplots(figsize=(1.0 + 0.75 * k, 0.8 + 0.38 * d))
    ax.imshow(mat, vmin=0, vmax=1, cmap="viridis", aspect="auto")
    for i in range(d):
        for j in range(k):
            ax.text(j, i, f"{mat[i, j]:.2f}", ha="center", va="center", fontsize=7,
                    color="black" if mat[i, j] > 0.6 else "white")
    ax.set_xticks(range(k), names, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(d), [f"z{i}" for i in range(d)], fontsize=8)
    for i, label in enumerate(ax.get_yticklabels()):
        if not active[i]:
            label.set_color("red")
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def to_uint8(images: np.ndarray) -> np.ndarray:
    """Float images in [0, 1], channels first (..., C, H, W) -> uint8 channels last."""
    arr = np.clip(np.asarray(images) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return np.moveaxis(arr, -3, -1)
