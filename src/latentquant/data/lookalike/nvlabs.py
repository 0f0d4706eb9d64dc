"""Procedural look-alikes of Falcor3D (lit living room) and Isaac3D (robot arm in a kitchen), numpy only.

They are flat 2-D compositions, not ray-traced scenes: each image is built from a few layers of soft-edged
shapes, evaluated for a whole block of images at once. What matters for tests and offline runs is that
the factor grid, the file layout and the direction of each factor's effect match the real data, and that
every factor visibly changes the image.
"""

from __future__ import annotations

import numpy as np

from ...errors import UserError
from ..catalog import FALCOR3D, ISAAC3D, DatasetSpec

_BLOCK = 128  # images rendered per step: bounds float32 scratch memory (~100 MB at 128x128)


def _check_classes(classes: np.ndarray, spec: DatasetSpec) -> np.ndarray:
    classes = np.asarray(classes)
    sizes = np.asarray(spec.factor_sizes)
    if classes.ndim != 2 or classes.shape[1] != len(sizes) or (classes < 0).any() or (classes >= sizes).any():
        raise UserError(f"{spec.title} classes must be (n, {len(sizes)}) integers below {list(sizes)}, "
                        f"got shape {classes.shape}")
    return classes


def _coords(size: int) -> tuple[np.ndarray, np.ndarray]:
    c = (np.arange(size, dtype=np.float32) + 0.5) / size
    return c[None, None, :], c[None, :, None]  # u (columns), v (rows), broadcast against (n, 1, 1)


def _col(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.float32)[:, None, None]


def _box(x: np.ndarray, y: np.ndarray, x0, x1, y0, y1, px: float) -> np.ndarray:
    """Soft (one-pixel antialiased) coverage of an axis-aligned rectangle."""
    inside = np.minimum(np.minimum(x - x0, x1 - x), np.minimum(y - y0, y1 - y))
    return np.clip(inside / px + 0.5, 0.0, 1.0)


def _disk(x: np.ndarray, y: np.ndarray, cx, cy, r, px: float) -> np.ndarray:
    return np.clip((r - np.sqrt((x - cx) ** 2 + (y - cy) ** 2)) / px + 0.5, 0.0, 1.0)


def _segment(x: np.ndarray, y: np.ndarray, a: tuple, b: tuple, r: float, px: float) -> np.ndarray:
    """Soft coverage of a thick line from a to b (each an (x, y) pair of (n, 1, 1) arrays)."""
    ax, ay = a
    bx, by = b
    dx, dy = bx - ax, by - ay
    t = np.clip(((x - ax) * dx + (y - ay) * dy) / (dx * dx + dy * dy + 1e-9), 0.0, 1.0)
    d = np.sqrt((x - ax - t * dx) ** 2 + (y - ay - t * dy) ** 2)
    return np.clip((r - d) / px + 0.5, 0.0, 1.0)


def _paint(img: np.ndarray, mask: np.ndarray, color) -> np.ndarray:
    color = np.asarray(color, dtype=np.float32)
    return img + mask[..., None] * (color - img)


def _to_uint8(img: np.ndarray) -> np.ndarray:
    return np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8)


# --- Falcor3D -------------------------------------------------------------------------------------------


def _falcor_block(t: np.ndarray, size: int) -> np.ndarray:
    li, lx, ly, lz, cx, cy, cz = (_col(t[:, k]) for k in range(7))
    u, v = _coords(size)
    px = 1.0 / size
    zoom = 1.0 + 0.45 * cz  # camera_z dollies in
    pan_x, pan_y = (cx - 0.5) * 0.3, (cy - 0.5) * 0.22

    def layer(depth: float) -> tuple[np.ndarray, np.ndarray, float]:
        # Nearer layers (larger depth weight) pan and zoom more: parallax from the camera move.
        z = 1.0 + (zoom - 1.0) * depth
        return (u - 0.5) / z + 0.5 + pan_x * depth, (v - 0.5) / z + 0.5 + pan_y * depth, px

    dx, dy = 2.0 * lx - 1.0, 2.0 * ly - 1.0
    shadow_dx, shadow_dy = -dx * 0.07 * (1.6 - lz), 0.03 + 0.04 * (1.0 - dy) * (1.2 - lz)

    x, y, p = layer(0.35)
    horizon = 0.56
    floor = np.clip((y - horizon) / p + 0.5, 0.0, 1.0)
    n = len(t)
    img = np.empty((n, size, size, 3), np.float32)
    img[...] = np.array([0.84, 0.82, 0.80], np.float32)
    side = np.clip(np.maximum(0.1 - x, x - 0.9) / p + 0.5, 0, 1) * (1 - floor)
    img = _paint(img, side, [0.7, 0.69, 0.68])
    planks = 0.5 + 0.5 * np.sin(x * 60.0)
    wood = np.stack([0.52 + 0.06 * planks, 0.36 + 0.04 * planks, 0.22 + 0.02 * planks], axis=-1)
    img = img + floor[..., None] * (wood - img)
    for x0, x1, y0, y1 in ((0.14, 0.36, 0.14, 0.36), (0.62, 0.86, 0.12, 0.28)):
        frame = _box(x, y, x0, x1, y0, y1, p) - _box(x, y, x0 + 0.02, x1 - 0.02, y0 + 0.02, y1 - 0.02, p)
        img = _paint(img, np.clip(frame, 0, 1), [0.2, 0.2, 0.22])
        img = _paint(img, _disk(x, y, (x0 + x1) / 2, (y0 + y1) / 2 + 0.03, 0.03, p), [0.75, 0.12, 0.1])
    # Light falls across the room: a gradient along the light's x/y direction, flatter when it comes from
    # above (large z).
    gradient = 0.75 + (dx * (x - 0.5) + dy * (y - 0.5)) * 0.9 * (1.2 - lz) + 0.15 * lz

    rx, ry, rp = layer(0.7)
    rug = _box(rx, ry, 0.18, 0.82, 0.74, 0.92, rp)
    img = _paint(img, rug, [0.62, 0.12, 0.12])

    sx, sy, sp = layer(0.6)
    sofa = np.maximum(_box(sx, sy, 0.16, 0.6, 0.44, 0.64, sp), _box(sx, sy, 0.12, 0.64, 0.52, 0.64, sp))
    table_x, table_y, tp = layer(1.0)
    table = np.maximum.reduce([_box(table_x, table_y, 0.5, 0.86, 0.68, 0.73, tp),
                               _box(table_x, table_y, 0.53, 0.56, 0.73, 0.82, tp),
                               _box(table_x, table_y, 0.8, 0.83, 0.73, 0.82, tp)])
    shadow = np.maximum(_box(sx - shadow_dx, sy - shadow_dy, 0.16, 0.6, 0.44, 0.64, sp),
                        _box(table_x - shadow_dx, table_y - shadow_dy, 0.5, 0.86, 0.68, 0.8, tp))
    img = img * (1.0 - 0.5 * shadow[..., None])
    img = _paint(img, sofa, [0.88, 0.88, 0.9])
    for c0 in (0.2, 0.33, 0.46):
        img = _paint(img, _box(sx, sy, c0, c0 + 0.1, 0.46, 0.53, sp), [0.93, 0.55, 0.66])
    img = _paint(img, table, [0.22, 0.15, 0.12])
    img = _paint(img, _disk(table_x, table_y, 0.68, 0.635, 0.035, tp), [0.8, 0.15, 0.12])
    img = img * gradient[..., None]
    exposure = 0.45 + 1.1 * li  # dim .. over-exposed, as in the real traversal
    return _to_uint8(img * exposure[..., None])


# --- Isaac3D --------------------------------------------------------------------------------------------

_WALL_COLORS = np.array([[0.45, 0.68, 0.45], [0.58, 0.65, 0.56], [0.66, 0.6, 0.64], [0.86, 0.68, 0.82]], np.float32)
_OBJECT_COLORS = np.array([[0.32, 0.28, 0.9], [0.52, 0.48, 0.92], [0.74, 0.7, 0.93], [0.88, 0.88, 0.9]], np.float32)
ISAAC_SHAPES = ("cube", "cone", "sphere")


def _isaac_block(classes: np.ndarray, t: np.ndarray, size: int) -> np.ndarray:
    shape = classes[:, 0]
    rx, ry, ch, sc, li, ly = (_col(t[:, k]) for k in range(1, 7))
    u, v = _coords(size)
    px = 1.0 / size
    # A higher camera sees more floor: the scene slides up and shrinks a little.
    zoom = 1.0 - 0.12 * ch
    x = (u - 0.5) / zoom + 0.5
    y = (v - 0.5) / zoom + 0.5 + (ch - 0.5) * 0.25
    n = len(classes)
    img = np.empty((n, size, size, 3), np.float32)
    img[...] = _WALL_COLORS[classes[:, 8]][:, None, None, :]
    floor = np.clip((y - 0.6) / px + 0.5, 0, 1)
    tiles = ((np.floor(x * 8) + np.floor(y * 10)) % 2)[..., None]
    img = img + floor[..., None] * (np.float32(0.72) + 0.08 * tiles - img)
    img = _paint(img, _box(x, y, 0.3, 0.98, 0.04, 0.26, px), [0.94, 0.94, 0.92])
    for edge in (0.47, 0.64, 0.81):
        img = _paint(img, _box(x, y, edge - 0.004, edge + 0.004, 0.04, 0.26, px), [0.7, 0.7, 0.7])
    img = _paint(img, _box(x, y, 0.3, 0.98, 0.5, 0.6, px), [0.55, 0.5, 0.45])
    img = _paint(img, _box(x, y, -0.1, 0.2, 0.04, 0.78, px), [0.74, 0.76, 0.78])

    shoulder = (_col(np.full(n, 0.58)), _col(np.full(n, 0.8)))
    end = (0.14 + 0.5 * rx, 0.16 + 0.3 * ry)
    mid_x, mid_y = (shoulder[0] + end[0]) / 2, (shoulder[1] + end[1]) / 2
    elbow = (mid_x + 0.1, mid_y - 0.08)
    img = _paint(img, _box(x, y, 0.5, 0.66, 0.8, 1.2, px), [0.3, 0.22, 0.16])
    arm = np.maximum(_segment(x, y, shoulder, elbow, 0.04, px), _segment(x, y, elbow, end, 0.03, px))
    img = _paint(img, arm, [0.82, 0.46, 0.2])
    img = _paint(img, _disk(x, y, elbow[0], elbow[1], 0.045, px), [0.6, 0.32, 0.14])

    r = 0.05 + 0.025 * _col(classes[:, 4])
    ox, oy = x - end[0], y - end[1]
    cube = _box(ox, oy, -r, r, -r, r, px)
    # The cone lies on its side, tip to the right, as in the official images.
    cone = np.clip(np.minimum(np.minimum(ox + r, r - ox), 0.5 * (r - ox) - np.abs(oy)) / px + 0.5, 0, 1)
    sphere = _disk(ox, oy, 0.0, 0.0, r, px)
    masks = np.stack([cube, cone, sphere])
    obj = masks[shape, np.arange(n)]
    shade = 0.75 + 0.3 * np.clip((ox * (2 * ly - 1) - oy * 0.5) / r, -1, 1)
    color = _OBJECT_COLORS[classes[:, 7]][:, None, None, :] * shade[..., None]
    img = img + obj[..., None] * (color - img)

    # The light's y direction moves a bright spot across wall and floor.
    spot = np.exp(-(((x - (0.1 + 0.8 * ly)) / 0.16) ** 2 + ((y - 0.45) / 0.3) ** 2))
    exposure = 0.55 + 0.7 * li
    img = img * (0.75 + 0.5 * spot[..., None]) * exposure[..., None]
    return _to_uint8(img)


def render_falcor3d(classes: np.ndarray, image_size: int = FALCOR3D.native_size) -> np.ndarray:
    """(n, 7) class indices in Falcor3D file order -> (n, S, S, 3) uint8 look-alike images."""
    classes = _check_classes(classes, FALCOR3D)
    t = classes / (np.asarray(FALCOR3D.factor_sizes) - 1.0)
    out = np.empty((len(classes), image_size, image_size, 3), np.uint8)
    for s in range(0, len(classes), _BLOCK):
        out[s:s + _BLOCK] = _falcor_block(t[s:s + _BLOCK], image_size)
    return out


def render_isaac3d(classes: np.ndarray, image_size: int = ISAAC3D.native_size) -> np.ndarray:
    """(n, 9) class indices in Isaac3D file order -> (n, S, S, 3) uint8 look-alike images."""
    classes = _check_classes(classes, ISAAC3D)
    t = classes / (np.asarray(ISAAC3D.factor_sizes) - 1.0)
    out = np.empty((len(classes), image_size, image_size, 3), np.uint8)
    for s in range(0, len(classes), _BLOCK):
        out[s:s + _BLOCK] = _isaac_block(classes[s:s + _BLOCK], t[s:s + _BLOCK], image_size)
    return out


# name -> renderer, for data/nvlabs.py's writer of the official folder layout.
RENDERERS = {"falcor3d": render_falcor3d, "isaac3d": render_isaac3d}
