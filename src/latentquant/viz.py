"""Figures: those written at every evaluation (NMI heatmap, latent traversals, reconstructions) and the
plots of a run report (metric curves, codebook usage, latent histograms).

Matplotlib with the Agg backend only, so figures work on headless machines; image grids are written
with Pillow directly so they keep their exact pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from .fsio import atomic_write


def _pyplot():
    """pyplot on the Agg backend, imported on first use (matplotlib's import costs a second)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path, dpi: int) -> None:
    """Lay out, write (atomically, never through a planted link) and free a figure (pyplot keeps every open
    figure alive until it is closed)."""
    fig.tight_layout()
    with atomic_write(Path(path)) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    _pyplot().close(fig)


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
    with atomic_write(Path(path)) as tmp:
        img.save(tmp, format="PNG")


def save_nmi_heatmap(
    nmi: np.ndarray, active: np.ndarray, path: Path, *, factor_names: Sequence[str] | None = None,
    title: str = "",
) -> None:
    """NMI matrix as the paper draws it: latents as rows, sources as columns, inactive latents in red."""
    plt = _pyplot()
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
    _save(fig, path, dpi=110)


def to_uint8(images: np.ndarray) -> np.ndarray:
    """Float images in [0, 1], channels first (..., C, H, W) -> uint8 channels last."""
    arr = np.clip(np.asarray(images) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return np.moveaxis(arr, -3, -1)


def save_metric_panels(series: dict[str, tuple[np.ndarray, np.ndarray]], path: Path, *, ncols: int = 4,
                       title: str = "") -> None:
    """One small panel per metric: {name: (steps, values)}. A positive series spanning two decades or more is
    drawn on a log axis, so a loss that falls from 1 to 0.001 still shows its late progress."""
    plt = _pyplot()
    names = list(series)
    cols = min(ncols, len(names))
    rows = -(-len(names) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 1.9 * rows + (0.3 if title else 0)), squeeze=False)
    for ax, name in zip(axes.flat, names, strict=False):
        steps, values = (np.asarray(a, dtype=float) for a in series[name])
        # A metric logged once (a suite score at the last step) is a point, not an invisible line.
        ax.plot(steps, values, marker="o" if len(steps) <= 20 else None, markersize=3, linewidth=1.2)
        finite = values[np.isfinite(values)]
        if len(finite) and finite.min() > 0 and finite.max() / finite.min() >= 100:
            ax.set_yscale("log")
        ax.set_title(name, fontsize=9)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    for ax in axes[-1]:
        ax.set_xlabel("step", fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    _save(fig, path, dpi=90)


def save_usage_heatmap(freq: np.ndarray, path: Path, *, values: np.ndarray | None = None, title: str = "") -> None:
    """Latent x codebook-index frequencies (rows sum to 1; NaN where a latent has fewer values).

    Each cell is labelled with its codebook value (if `values` is given, same shape) over its frequency, so the
    figure reads as "latent j takes value v this often".
    """
    plt = _pyplot()
    freq = np.asarray(freq, dtype=float)
    d, k = freq.shape
    fig, ax = plt.subplots(figsize=(1.2 + 0.62 * k, 0.8 + 0.42 * d))
    cmap = plt.get_cmap("magma").with_extremes(bad="#dddddd")  # grey: padding of ragged codebooks
    ax.imshow(np.ma.masked_invalid(freq), vmin=0, vmax=max(float(np.nanmax(freq)), 1e-9), cmap=cmap, aspect="auto")
    top = np.nanmax(freq)
    for i in range(d):
        for j in range(k):
            if not np.isfinite(freq[i, j]):
                continue
            text = f"{freq[i, j]:.0%}" if values is None else f"{values[i, j]:+.2f}\n{freq[i, j]:.0%}"
            ax.text(j, i, text, ha="center", va="center", fontsize=6,
                    color="black" if freq[i, j] > 0.6 * top else "white")
    ax.set_xticks(range(k), [str(j) for j in range(k)], fontsize=7)
    ax.set_yticks(range(d), [f"z{i}" for i in range(d)], fontsize=8)
    ax.set_xlabel("codebook index (cell: value / share of images)", fontsize=8)
    if title:
        ax.set_title(title, fontsize=9)
    _save(fig, path, dpi=100)


def save_sorted_usage(counts: np.ndarray, path: Path, *, title: str = "") -> None:
    """Usage of a large shared codebook (VQ-VAE's 512 codes) as bars sorted from most to least used."""
    plt = _pyplot()
    counts = np.sort(np.asarray(counts, dtype=float))[::-1]
    share = counts / max(counts.sum(), 1.0)
    fig, ax = plt.subplots(figsize=(7.0, 2.4))
    ax.bar(np.arange(len(share)), share, width=1.0, color="#4c72b0")
    ax.set_xlim(-0.5, len(share) - 0.5)
    ax.set_xlabel("codes, most used first", fontsize=8)
    ax.set_ylabel("share of uses", fontsize=8)
    ax.tick_params(labelsize=7)
    if title:
        ax.set_title(title, fontsize=9)
    _save(fig, path, dpi=90)


def save_histograms(samples: np.ndarray, path: Path, *, bins: int = 30, ncols: int = 6, title: str = "") -> None:
    """A histogram per column of (N, D) samples: how a continuous latent's values spread over a data set."""
    plt = _pyplot()
    samples = np.asarray(samples, dtype=float)
    d = samples.shape[1]
    cols = min(ncols, d)
    rows = -(-d // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.9 * cols, 1.5 * rows + (0.3 if title else 0)), squeeze=False)
    for j, ax in enumerate(axes.flat):
        if j >= d:
            ax.axis("off")
            continue
        ax.hist(samples[:, j], bins=bins, color="#4c72b0")
        ax.set_title(f"z{j}", fontsize=8)
        ax.tick_params(labelsize=6)
    if title:
        fig.suptitle(title, fontsize=10)
    _save(fig, path, dpi=90)
