"""Regenerate docs/figures/mpi3d-lookalike.png: random MPI3D-toy look-alike samples, then one factor sweep per row.

Run from the repository root: ``python docs/make_mpi3d_figure.py``. It renders about 70 images (seconds).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from latentquant.data.lookalike.mpi3d import render_mpi3d
from latentquant.data.mpi3d import FACTOR_NAMES, GRIDS

OUT = Path(__file__).resolve().parent / "figures" / "mpi3d-lookalike.png"
COLUMNS = 8
LABEL_WIDTH = 120
# Blue cone, large, centre camera, sea-green band, arm upright, not tilted: a mid-grid reference image.
BASE = np.array([3, 0, 1, 1, 1, 20, 0])


def _sweeps() -> list[tuple[str, np.ndarray]]:
    rows = []
    for k, size in enumerate(GRIDS["6x6"]):
        classes = np.repeat(BASE[None], min(size, COLUMNS), axis=0)
        classes[:, k] = np.linspace(0, size - 1, len(classes)).round().astype(int)
        rows.append((FACTOR_NAMES[k], classes))
    return rows


def main() -> None:
    rng = np.random.default_rng(0)
    sizes = GRIDS["6x6"]
    random = np.stack(np.unravel_index(rng.choice(int(np.prod(sizes)), 2 * COLUMNS, replace=False), sizes), axis=1)
    rows = [("random", random[:COLUMNS]), ("random", random[COLUMNS:]), *_sweeps()]
    tile = 64 + 2  # a white gap, or the arcs of neighbouring tiles read as one band
    sheet = Image.new("RGB", (LABEL_WIDTH + COLUMNS * tile, len(rows) * tile), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for r, (label, classes) in enumerate(rows):
        draw.text((4, r * tile + tile // 2 - 6), label, fill=(0, 0, 0))
        for c, image in enumerate(render_mpi3d(classes)):
            sheet.paste(Image.fromarray(image), (LABEL_WIDTH + c * tile, r * tile))
    sheet = sheet.resize((sheet.width * 2, sheet.height * 2), Image.NEAREST)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(OUT)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
