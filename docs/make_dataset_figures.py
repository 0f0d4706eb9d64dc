"""Make the dataset figures in docs/figures: ``python docs/make_dataset_figures.py``.

- shapes3d-lookalike.png: 5x5 random look-alike images (64x64, shown 4x with nearest-neighbour).
- shapes3d-lookalike-factors.png: one row per factor, sweeping it from a fixed base image.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from latentquant.data.lookalike.shapes3d import render_shapes3d  # noqa: E402
from latentquant.data.shapes3d import FACTOR_NAMES, FACTOR_SIZES, FACTOR_VALUES, SHAPE_NAMES  # noqa: E402

FIGURES = Path(__file__).resolve().parent / "figures"
UPSCALE, GAP = 4, 8
# Red floor, blue wall, green cube, middle scale, camera at +13 degrees (one room corner in view).
BASE = np.array([0, 6, 3, 4, 0, 10])


def image_grid(images: np.ndarray, cols: int) -> Image.Image:
    """Tile images (N, S, S, 3) into a white-gapped grid, each upscaled with nearest-neighbour."""
    big = images.repeat(UPSCALE, axis=1).repeat(UPSCALE, axis=2)
    rows = -(-len(big) // cols)
    tile = big.shape[1]
    canvas = np.full((rows * tile + (rows + 1) * GAP, cols * tile + (cols + 1) * GAP, 3), 255, np.uint8)
    for i, img in enumerate(big):
        r, c = divmod(i, cols)
        top, left = GAP + r * (tile + GAP), GAP + c * (tile + GAP)
        canvas[top:top + tile, left:left + tile] = img
    return Image.fromarray(canvas)


def random_samples(seed: int = 0, n: int = 25) -> np.ndarray:
    rng = np.random.default_rng(seed)
    classes = np.stack([rng.integers(0, size, n) for size in FACTOR_SIZES], axis=1)
    return render_shapes3d(classes, 64)


def factor_sweeps() -> plt.Figure:
    cols = max(FACTOR_SIZES)
    fig, axes = plt.subplots(len(FACTOR_SIZES), cols, figsize=(cols * 0.9, len(FACTOR_SIZES) * 1.0))
    for k, (name, size) in enumerate(zip(FACTOR_NAMES, FACTOR_SIZES, strict=True)):
        classes = np.repeat(BASE[None], size, axis=0)
        classes[:, k] = np.arange(size)
        images = render_shapes3d(classes, 64)
        for j in range(cols):
            ax = axes[k, j]
            ax.set_xticks([])
            ax.set_yticks([])
            if j >= size:
                ax.axis("off")
                continue
            ax.imshow(images[j], interpolation="nearest")
            value = SHAPE_NAMES[j] if name == "shape" else f"{FACTOR_VALUES[k][j]:.3g}"
            ax.set_title(value, fontsize=6, pad=2)
        axes[k, 0].set_ylabel(name, fontsize=8)
    fig.suptitle("Shapes3D look-alike: one factor swept per row (others fixed)", fontsize=10)
    fig.tight_layout()
    return fig


def main() -> None:
    FIGURES.mkdir(parents=True, exist_ok=True)
    image_grid(random_samples(), cols=5).save(FIGURES / "shapes3d-lookalike.png")
    fig = factor_sweeps()
    fig.savefig(FIGURES / "shapes3d-lookalike-factors.png", dpi=150)
    plt.close(fig)
    print(f"wrote {FIGURES / 'shapes3d-lookalike.png'} and {FIGURES / 'shapes3d-lookalike-factors.png'}")


if __name__ == "__main__":
    main()
