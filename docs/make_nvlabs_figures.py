"""Make the Falcor3D and Isaac3D look-alike figures in docs/figures: ``python docs/make_nvlabs_figures.py``.

Each figure: two rows of random samples, then one row per factor, sweeping it from a fixed base image
(128x128, the size the look-alike folders are written at).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from latentquant.data.catalog import FALCOR3D, ISAAC3D, DatasetSpec  # noqa: E402
from latentquant.data.lookalike.nvlabs import ISAAC_SHAPES, render_falcor3d, render_isaac3d  # noqa: E402

FIGURES = Path(__file__).resolve().parent / "figures"
COLS = 8
SAMPLE_ROWS = 2


def figure(spec: DatasetSpec, render, seed: int = 0) -> plt.Figure:
    sizes = spec.factor_sizes
    rows = SAMPLE_ROWS + len(sizes)
    fig, axes = plt.subplots(rows, COLS, figsize=(COLS * 1.05, rows * 1.12))
    rng = np.random.default_rng(seed)
    samples = render(np.stack([rng.integers(0, m, SAMPLE_ROWS * COLS) for m in sizes], axis=1))
    base = np.array([m // 2 for m in sizes])
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    for i, image in enumerate(samples):
        axes[i // COLS, i % COLS].imshow(image)
    axes[0, 0].set_ylabel("samples", fontsize=7)
    for k, (name, m) in enumerate(zip(spec.factor_names, sizes, strict=True)):
        classes = np.repeat(base[None], m, axis=0)
        classes[:, k] = np.arange(m)
        images = render(classes)
        row = SAMPLE_ROWS + k
        for j in range(COLS):
            ax = axes[row, j]
            if j >= m:
                ax.axis("off")
                continue
            ax.imshow(images[j])
            label = ISAAC_SHAPES[j] if name == "object_shape" else f"{j / (m - 1):.2g}"
            ax.set_title(label, fontsize=6, pad=1)
        axes[row, 0].set_ylabel(name, fontsize=7)
    fig.suptitle(f"{spec.title} look-alike: random samples, then one factor swept per row", fontsize=10)
    fig.tight_layout()
    return fig


def main() -> None:
    FIGURES.mkdir(parents=True, exist_ok=True)
    for spec, render in ((FALCOR3D, render_falcor3d), (ISAAC3D, render_isaac3d)):
        fig = figure(spec, render)
        out = FIGURES / f"{spec.name}-lookalike.png"
        fig.savefig(out, dpi=110)
        plt.close(fig)
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
