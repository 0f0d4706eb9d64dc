"""Procedural look-alike of the MPI3D-toy scene, drawn with vectorised numpy (2-D, flat-shaded).

Layout (64-px units, measured on the official toy GIF): dark-grey stage (52, 52, 52); a coloured arc
band across the upper middle (background_color); a ring base at bottom centre and a light-grey arm
(thick pillar, thin rod) up to the object at the arm tip. camera_height shifts the stage vertically,
horizontal_axis swings the tip left/right on an arc around the base, vertical_axis tilts the arm so the
object comes down and toward the camera (lower and larger). Shapes are 2-D silhouettes with two or three
flat-shaded faces. It is a stand-in for tests and offline runs, not a reconstruction of the real renders.

All images of a batch are drawn at once on a 2x supersampled grid of palette indices; the box downsample
gives the soft edges of the real 64x64 images. The drawing is deterministic: same classes, same pixels.
"""

from __future__ import annotations

import numpy as np

from ..catalog import MPI3D

STAGE_RGB = np.array([52.0, 52.0, 52.0])
BACKGROUND_RGB = np.array([[97.0, 73.0, 138.0], [67.0, 93.0, 89.0], [99.0, 70.0, 79.0]])  # purple, sea green, salmon
OBJECT_RGB = np.array([
    [225.0, 225.0, 225.0],  # white
    [40.0, 150.0, 60.0],  # green
    [211.0, 0.0, 0.0],  # red
    [42.0, 110.0, 209.0],  # blue
    [82.0, 51.0, 34.0],  # brown
    [118.0, 117.0, 51.0],  # olive
])
_ARM_RGB, _ROD_RGB, _RING_RGB = np.array([150.0] * 3), np.array([175.0] * 3), np.array([190.0] * 3)

_SS = 2  # supersampling per axis; the box downsample below assumes 2
_CAMERA_SHIFT = (-4.0, 0.0, 4.0)  # top / center / bottom camera: rows the whole stage moves [UNV direction]
_BASE_ROW = 43.0
_ARC_TOP_ROW, _ARC_DROP, _ARC_HALF_WIDTH = 21.0, 9.0, 2.8  # arc centre row, fall at the image edges
_ARM_REACH_X, _ARM_REACH_Y = 24.0, 27.0  # projected arm length sideways / upward
_JOINT = 0.6  # the thick pillar covers this fraction of the arm, the thin rod the rest
_PILLAR_HALF_WIDTH, _ROD_HALF_WIDTH = 2.0, 0.6
_RING_RX, _RING_RY = 4.6, 3.0
_SWING_DEG = 80.0  # horizontal_axis swings the arm +-80 degrees from vertical
_TILT = 0.4  # vertical_axis at 39: arm 40% shorter on screen, object 40% larger
_OBJECT_RADIUS = (4.2, 6.5)  # small, large (half-size in px at 64x64)
_SHADE = (1.15, 0.85, 0.62)  # lit / side / dark face multipliers
_TEXTURE = np.random.default_rng(12345).normal(0.0, 1.5, size=(256, 256))  # fixed faint stage grain


def _near_segment(x, y, x0, y0, x1, y1, half_width: float) -> np.ndarray:
    dx, dy = x1 - x0, y1 - y0
    px, py = x - x0, y - y0
    t = np.clip((px * dx + py * dy) / np.maximum(dx * dx + dy * dy, np.float32(1e-6)), 0.0, 1.0)
    ex, ey = px - t * dx, py - t * dy
    return ex * ex + ey * ey <= np.float32(half_width * half_width)


def _object(shape: int, u: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mask and face index (0 lit, 1 side, 2 dark) of one shape in object units (radius 1, y down)."""
    face = np.where(u < 0, 0, 1)
    if shape == 0:  # cone: triangle with a rounded base, lit left half
        mask = (w <= 0.85) & (np.abs(u) <= (w + 1.0) * 0.5)
        mask |= (u ** 2 / 1.0 + (w - 0.85) ** 2 / 0.09 <= 1.0) & (w > 0.85)
        face = np.where(u < -0.15, 0, 1)
    elif shape == 1:  # cube seen from above the front edge: top face, left and right faces
        top = (w >= -1.0) & (w < -0.4) & (np.abs(u) <= 0.9)
        body = (w >= -0.4) & (w <= 0.95) & (np.abs(u) <= 0.9)
        mask = top | body
        face = np.where(top, 0, np.where(u < 0, 1, 2))
    elif shape == 2:  # cylinder: elliptical top cap, body, rounded bottom
        cap = u ** 2 / 0.64 + (w + 0.7) ** 2 / 0.09 <= 1.0
        body = (np.abs(u) <= 0.8) & (w >= -0.7) & (w <= 0.8)
        bottom = u ** 2 / 0.64 + (w - 0.8) ** 2 / 0.09 <= 1.0
        mask = cap | body | bottom
        face = np.where(cap, 0, np.where(u < 0.1, 1, 2))
    elif shape == 3:  # hexagonal prism: hexagonal top face over a three-faced body
        top = (np.abs(w + 0.65) <= 0.3) & (np.abs(u) <= 0.9 - np.abs(w + 0.65))
        body = (w > -0.65) & (w <= 0.9) & (np.abs(u) <= 0.9)
        mask = top | body
        face = np.where(top, 0, np.where(u < -0.35, 1, np.where(u <= 0.35, 0, 2)))
    elif shape == 4:  # pyramid: triangle, two faces split at the ridge
        mask = (w <= 0.9) & (w >= -1.0) & (np.abs(u) <= (w + 1.0) * 0.55)
        face = np.where(u < 0.1 * (w + 1.0), 0, 2)
    else:  # sphere: disc shaded by the direction to an upper-left light
        mask = u * u + w * w <= 1.0
        light = -0.55 * u - 0.6 * w
        face = np.where(light > 0.25, 0, np.where(light > -0.35, 1, 2))
    return mask, face


def render_mpi3d(classes: np.ndarray, image_size: int = 64) -> np.ndarray:
    """Render (n, 7) MPI3D class indices (6x6 grid order) as (n, size, size, 3) uint8 images."""
    classes = np.asarray(classes, dtype=np.int64).reshape(-1, len(MPI3D.factor_sizes))
    n = len(classes)
    s = image_size * _SS
    scale = image_size / 64.0
    # Pixel centres in 64-px units, shared by every image of the batch.
    coords = (np.arange(s, dtype=np.float32) + 0.5) / (_SS * scale)
    x = coords[None, None, :]
    y = coords[None, :, None]

    def col(k: int) -> np.ndarray:
        return classes[:, k][:, None, None]

    shift = np.asarray(_CAMERA_SHIFT, np.float32)[col(3)]
    base_y = np.float32(_BASE_ROW) + shift
    # Paint palette indices (uint8), not RGB: every layer is then one cheap boolean write, and colour is
    # looked up once at the end from a per-image palette.
    palette = np.empty((n, 8, 3), np.float32)
    palette[:, 0] = STAGE_RGB
    palette[:, 1] = BACKGROUND_RGB[classes[:, 4]]
    palette[:, 2], palette[:, 3], palette[:, 4] = _RING_RGB, _ARM_RGB, _ROD_RGB
    palette[:, 5:8] = OBJECT_RGB[classes[:, 0]][:, None, :] * np.asarray(_SHADE)[None, :, None]
    canvas = np.zeros((n, s, s), np.uint8)

    # Arc: a band around a parabola through the upper middle, falling toward the image edges.
    arc_row = _ARC_TOP_ROW + shift + _ARC_DROP * ((x - 32.0) / 32.0) ** 2
    canvas[np.broadcast_to(np.abs(y - arc_row) <= _ARC_HALF_WIDTH, canvas.shape)] = 1

    # Arm kinematics: swing about the base (horizontal_axis), shortened by the tilt (vertical_axis).
    swing = np.radians(np.linspace(-_SWING_DEG, _SWING_DEG, MPI3D.factor_sizes[5], dtype=np.float32))[col(5)]
    tilt = (np.float32(_TILT / (MPI3D.factor_sizes[6] - 1)) * col(6)).astype(np.float32)
    reach = 1.0 - tilt
    tip_x = (32.0 + _ARM_REACH_X * reach * np.sin(swing)).astype(np.float32)
    tip_y = (base_y - 4.0 - _ARM_REACH_Y * reach * np.cos(swing) + 10.0 * tilt).astype(np.float32)
    joint_x = (32.0 + _JOINT * (tip_x - 32.0)).astype(np.float32)
    joint_y = (base_y - 4.0 + _JOINT * (tip_y - base_y + 4.0)).astype(np.float32)

    ring = ((x - 32.0) / _RING_RX) ** 2 + ((y - base_y) / _RING_RY) ** 2
    canvas[(ring <= 1.0) & (ring >= 0.3)] = 2
    canvas[_near_segment(x, y, np.float32(32.0), base_y - 1.0, joint_x, joint_y, _PILLAR_HALF_WIDTH)] = 3
    canvas[_near_segment(x, y, joint_x, joint_y, tip_x, tip_y, _ROD_HALF_WIDTH)] = 4

    radius = np.asarray(_OBJECT_RADIUS, np.float32)[col(2)] * (1.0 + tilt)
    cx, cy = tip_x, tip_y - 0.8 * radius
    u, w = (x - cx) / radius, (y - cy) / radius
    for shape in np.unique(classes[:, 1]):
        sel = np.flatnonzero(classes[:, 1] == shape)
        mask, face = _object(int(shape), u[sel], w[sel])
        mask = np.broadcast_to(mask, (len(sel), s, s))
        sub = canvas[sel]
        sub[mask] = np.broadcast_to(5 + face, mask.shape)[mask]
        canvas[sel] = sub

    # One flat palette: image i's entry p is row 8 i + p, so the lookup is a single fancy index.
    flat = canvas.astype(np.int32) + (8 * np.arange(n, dtype=np.int32))[:, None, None]
    rgb = palette.reshape(-1, 3)[flat]
    img = rgb[:, 0::2, 0::2] + rgb[:, 1::2, 0::2] + rgb[:, 0::2, 1::2] + rgb[:, 1::2, 1::2]
    img *= np.float32(0.25)
    img += _TEXTURE[:image_size, :image_size, None].astype(np.float32)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)
