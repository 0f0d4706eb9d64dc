"""Binary renderer for the dSprites look-alike: a white square, ellipse or heart on black, 64x64.

Geometry was measured from the official notebook figures (see docs/datasets.md): the sprite centre sits at
``64 * (0.25 + 0.5 * pos)`` px on each axis, a square has side 19.1*s px, an ellipse full axes
23.2*s x 13.1*s px and a heart a 17.3*s px box (area ~183*s^2 px, as measured). A pixel is 1 iff its
centre lies inside the rotated shape; there is no anti-aliasing, like the original.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..catalog import DSPRITES

IMAGE_SIZE = DSPRITES.native_size
SQUARE_SIDE = 19.1
ELLIPSE_AXES = (23.2, 13.1)  # full lengths along the shape's own x and y at orientation 0
HEART_BOX = 17.3  # chosen so the area matches the measured ~183 px at scale 1, inside a ~17 px box
_WINDOW = 32  # every sprite fits in a 32x32 window around its centre (square diagonal is 27 px)
_HEART_RES = 640  # lookup-mask resolution across the heart's box: ~0.03 px at scale 1

# Class -> value grids (the official file's ``latents_possible_values``, colour dropped).
_, SCALES, ORIENTATIONS, POSITIONS, _ = DSPRITES.factor_values


def _heart_outline(n: int = 720) -> tuple[np.ndarray, np.ndarray]:
    """The classic parametric heart in y-down image orientation, centroid at 0, fitted to a unit box."""
    t = np.linspace(0.0, 2 * np.pi, n, endpoint=False)
    x = 16 * np.sin(t) ** 3
    y = -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))  # flip: point at the bottom
    x = x / (x.max() - x.min())
    y = y / (y.max() - y.min())
    cross = x * np.roll(y, -1) - np.roll(x, -1) * y
    area = cross.sum() / 2
    # Rotation is about the centroid, so the sprite's mass stays at its position at every orientation.
    cx = ((x + np.roll(x, -1)) * cross).sum() / (6 * area)
    cy = ((y + np.roll(y, -1)) * cross).sum() / (6 * area)
    return x - cx, y - cy


@lru_cache(maxsize=1)
def _heart_mask() -> tuple[np.ndarray, float, float]:
    """Inside-mask of the unit heart sampled on a fine grid, with the grid's lower corner (x0, y0)."""
    x, y = _heart_outline()
    x0, y0 = x.min(), y.min()
    centres = (np.arange(_HEART_RES) + 0.5) / _HEART_RES
    px, py = centres[None, :] + x0, centres[:, None] + y0
    inside = np.zeros((_HEART_RES, _HEART_RES), dtype=bool)
    # Even-odd crossing rule, one edge at a time: cheap once and exact for this simple polygon.
    for xa, ya, xb, yb in zip(x, y, np.roll(x, -1), np.roll(y, -1), strict=True):
        if ya == yb:
            continue
        crosses = (ya > py) != (yb > py)
        x_at = xa + (py - ya) * (xb - xa) / (yb - ya)
        inside ^= crosses & (px < x_at)
    return inside, float(x0), float(y0)


def _inside(shape: int, scale: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Whether shape-frame points (u, v) in px (y down) lie inside sprites of one shape (0/1/2) at ``scale``."""
    s = scale[:, None, None]
    if shape == 0:
        half = np.float32(SQUARE_SIDE / 2) * s
        return (np.abs(u) <= half) & (np.abs(v) <= half)
    if shape == 1:
        a, b = np.float32(ELLIPSE_AXES[0] / 2) * s, np.float32(ELLIPSE_AXES[1] / 2) * s
        return (u / a) ** 2 + (v / b) ** 2 <= 1.0
    mask, x0, y0 = _heart_mask()
    step = np.float32(HEART_BOX) * s / _HEART_RES
    i = np.floor(v / step - y0 * _HEART_RES).astype(np.int64)
    j = np.floor(u / step - x0 * _HEART_RES).astype(np.int64)
    ok = (i >= 0) & (i < _HEART_RES) & (j >= 0) & (j < _HEART_RES)
    return ok & mask[np.clip(i, 0, _HEART_RES - 1), np.clip(j, 0, _HEART_RES - 1)]


def render_dsprites(factors: np.ndarray) -> np.ndarray:
    """Render (n, 5) class indices (shape, scale, orientation, posX, posY) as (n, 64, 64) uint8 in {0, 1}.

    Orientation turns the sprite about its centre, clockwise on screen for increasing angle (Love2D's
    y-down convention; the real direction is unverified). posX indexes columns and posY rows, posY = 0 at
    the top (also unverified against a real file).
    """
    factors = np.asarray(factors, dtype=np.int64)
    if factors.ndim != 2 or factors.shape[1] != 5:
        raise ValueError(f"expected (n, 5) factor classes, got shape {factors.shape}")
    n = len(factors)
    shape, scale = factors[:, 0], SCALES[factors[:, 1]]
    theta = ORIENTATIONS[factors[:, 2]]
    cx = IMAGE_SIZE * (0.25 + 0.5 * POSITIONS[factors[:, 3]])
    cy = IMAGE_SIZE * (0.25 + 0.5 * POSITIONS[factors[:, 4]])
    # Only a window around the sprite is evaluated (a quarter of the image), then pasted in place.
    col0 = np.clip(np.floor(cx).astype(np.int64) - _WINDOW // 2, 0, IMAGE_SIZE - _WINDOW)
    row0 = np.clip(np.floor(cy).astype(np.int64) - _WINDOW // 2, 0, IMAGE_SIZE - _WINDOW)
    offsets = np.arange(_WINDOW)
    cols = col0[:, None] + offsets  # (n, W)
    rows = row0[:, None] + offsets
    dx = (cols + 0.5 - cx[:, None])[:, None, :]  # (n, 1, W): pixel centres relative to the sprite centre
    dy = (rows + 0.5 - cy[:, None])[:, :, None]  # (n, W, 1)
    c = np.cos(theta).astype(np.float32)[:, None, None]
    s = np.sin(theta).astype(np.float32)[:, None, None]
    dx, dy = dx.astype(np.float32), dy.astype(np.float32)
    u = dx * c + dy * s  # inverse rotation into the shape's own frame
    v = -dx * s + dy * c
    window = np.zeros(u.shape, dtype=bool)
    for kind in range(3):  # each shape's test only on its own images
        sel = np.flatnonzero(shape == kind)
        if len(sel):
            window[sel] = _inside(kind, scale[sel].astype(np.float32), u[sel], v[sel])
    images = np.zeros((n, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    images[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]] = window
    return images
