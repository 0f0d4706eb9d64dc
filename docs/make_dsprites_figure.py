"""Make docs/figures/dsprites-lookalike.png: ``python docs/make_dsprites_figure.py``.

Top: random look-alike images. Below: one row per factor, sweeping it from a fixed base sprite (a large
heart in the centre), with the factor's real value above each image. Takes about a second.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from latentquant.data.dsprites import FACTOR_NAMES, FACTOR_SIZES, FACTOR_VALUES, SHAPE_NAMES  # noqa: E402
from latentquant.data.lookalike.dsprites import render_dsprites  # noqa: E402

FIGURE = Path(__file__).resolve().parent / "figures" / "dsprites-lookalike.png"
COLS, SAMPLE_ROWS = 10, 3
BASE = np.array([2, 5, 0, 16, 16])  # heart, scale 1, orientation 0, centred


def _sweep(k: int) -> tuple[np.ndarray, np.ndarray]:
    """Up to COLS evenly spaced classes of factor k from BASE, and their images."""
    classes = np.unique(np.round(np.linspace(0, FACTOR_SIZES[k] - 1, min(COLS, FACTOR_SIZES[k]))).astype(int))
    factors = np.repeat(BASE[None], len(classes), axis=0)
    factors[:, k] = classes
    return classes, render_dsprites(factors)


def make_figure(seed: int = 0) -> plt.Figure:
    rng = np.random.default_rng(seed)
    samples = render_dsprites(np.stack([rng.integers(0, s, SAMPLE_ROWS * COLS) for s in FACTOR_SIZES], axis=1))
    rows = SAMPLE_ROWS + len(FACTOR_NAMES)
    fig, axes = plt.subplots(rows, COLS, figsize=(COLS * 1.0, rows * 1.12))
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    for i, image in enumerate(samples):
        axes[i // COLS, i % COLS].imshow(image, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    axes[0, 0].set_ylabel("random", fontsize=8)
    for k, name in enumerate(FACTOR_NAMES):
        row = axes[SAMPLE_ROWS + k]
        classes, images = _sweep(k)
        for j in range(COLS):
            if j >= len(classes):
                row[j].axis("off")
                continue
            row[j].imshow(images[j], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            c = classes[j]
            label = SHAPE_NAMES[c] if name == "shape" else f"{FACTOR_VALUES[k][c]:.3g}"
            row[j].set_title(label, fontsize=6, pad=2)
        row[0].set_ylabel(name, fontsize=8)
    fig.suptitle("dSprites look-alike: random samples (top 3 rows), then one factor swept per row", fontsize=10)
    fig.tight_layout()
    return fig


def main() -> None:
    FIGURE.parent.mkdir(parents=True, exist_ok=True)
    fig = make_figure()
    fig.savefig(FIGURE, dpi=110)
    plt.close(fig)
    print(f"wrote {FIGURE}")


if __name__ == "__main__":
    main()
