"""Procedural look-alike of the 3D Shapes scene, ray-cast with numpy.

The scene follows the real data set: a square room without a ceiling (so the light-blue sky shows above
the walls), a camera orbiting the object by the ``orientation`` azimuth, one shaded primitive standing in
the middle of the floor and a soft shadow cast by a small area light. The camera and room constants were
fitted to pixel positions measured in the official GIF (wall/sky line, wall/floor line, room corner per
azimuth, object extents), so the layout lands on the same rows and columns as the real images.

Speed comes from the factor structure. Geometry and lighting depend only on (scale, shape, orientation),
480 combinations; the three hues only pick colours. For each combination the renderer therefore
computes, once per image size, per-pixel *weights* (anti-aliased coverage times shading) of the wall,
floor and object colours plus a constant RGB part (sky and highlight). An image is then a 6x3 matrix
product per pixel, and the clip to 255 after it reproduces the over-exposed highlights of the real
renders (an orange floor turns yellowish where it is brightest).
"""

from __future__ import annotations

import colorsys
from functools import lru_cache

import numpy as np

from ...errors import UserError
from ..catalog import SHAPES3D

FACTOR_SIZES = SHAPES3D.factor_sizes
FACTOR_VALUES = SHAPES3D.factor_values
SKY_RGB = np.array([153.0, 226.0, 249.0])

# Camera and room (world units: a cube of scale 1 has side 1; z is up, the object stands at the origin).
_CAM_DISTANCE = 3.16  # horizontal distance of the camera from the object axis
_CAM_HEIGHT = 0.89
_CAM_PITCH_UP_DEG = 2.85  # looking slightly up puts the wall/floor line below the image centre
_TAN_HALF_FOV = 0.5246  # 55 degrees horizontal field of view
_ROOM_HALF = 6.0  # walls at x = -6, x = +6 and y = +6
_WALL_HEIGHT = 3.63

# Object primitives as multiples of ``scale``.
_CUBE_SIDE = 1.0
_CYL_RADIUS, _CYL_HEIGHT = 0.5, 1.0
_SPHERE_RADIUS = 0.62
_CAPSULE_RADIUS, _CAPSULE_HEIGHT = 0.48, 1.85

# Key light: a small area light high up, to the left and slightly behind the object, so that shadows
# fall towards the camera and to the right as in the real images. The floor brightness follows a
# second, lower light (position and gain fitted to the floor of the official GIF).
_LIGHT_POS = np.array([-2.2, 1.0, 11.0])
_LIGHT_RADIUS = 0.8
_FLOOR_LIGHT_POS = np.array([-2.4, 0.8, 7.25])
_LIGHT_SAMPLES = 12

# Shading constants (V multipliers of the HSV colour).
_OBJ_AMBIENT, _OBJ_HEAD, _OBJ_KEY, _OBJ_WHITE = 0.57, 0.37, 0.37, 0.1
_FLOOR_KEY = 1.3  # over 1 on purpose: the real floor is over-exposed near the light
_SHADOW_DEPTH = 0.72  # fraction of the floor light the object's full shadow removes
_WALL_SHADE = {"back": 1.0, "left": 0.8, "right": 0.67}
_WALL_TEXTURE_DEPTH = 0.09

_SKY, _WALL, _FLOOR = 0, 1, 2
_NUM_GEOMETRY = FACTOR_SIZES[3] * FACTOR_SIZES[4] * FACTOR_SIZES[5]


def hsv_colours(hues: np.ndarray) -> np.ndarray:
    """RGB in 0..255 (float) of HSV(hue, 1, 1) for each hue."""
    return np.array([colorsys.hsv_to_rgb(float(h), 1.0, 1.0) for h in hues]) * 255.0


def _supersampling(image_size: int) -> int:
    # About 192 subpixel rows whatever the size: enough for smooth edges, cheap at small sizes.
    return int(np.clip(round(192 / image_size), 2, 6))


@lru_cache(maxsize=32)
def _camera(image_size: int, orient_idx: int) -> tuple[np.ndarray, np.ndarray]:
    """Camera origin (3,) and unit ray directions (n, n, 3) on the supersampled grid."""
    azimuth = np.radians(FACTOR_VALUES[5][orient_idx])
    pitch = np.radians(_CAM_PITCH_UP_DEG)
    origin = np.array([_CAM_DISTANCE * np.sin(azimuth), -_CAM_DISTANCE * np.cos(azimuth), _CAM_HEIGHT])
    ahead = np.array([-np.sin(azimuth), np.cos(azimuth), 0.0])
    right = np.array([np.cos(azimuth), np.sin(azimuth), 0.0])
    up = np.array([0.0, 0.0, 1.0])
    forward, up = np.cos(pitch) * ahead + np.sin(pitch) * up, -np.sin(pitch) * ahead + np.cos(pitch) * up
    n = image_size * _supersampling(image_size)
    grid = ((np.arange(n) + 0.5) / n * 2.0 - 1.0) * _TAN_HALF_FOV
    dirs = forward + grid[None, :, None] * right - grid[:, None, None] * up
    return origin, dirs / np.linalg.norm(dirs, axis=-1, keepdims=True)


def _wall_texture(u: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Faint lattice of darker diamonds, like the marks on the real walls (1 = no mark)."""
    fu, fz = (u / 0.55) % 1.0 - 0.5, (z / 0.55 + 0.5 * np.floor(u / 0.55)) % 1.0 - 0.5
    mark = np.clip(1.0 - (np.abs(fu) + np.abs(fz)) / 0.22, 0.0, 1.0)
    return 1.0 - _WALL_TEXTURE_DEPTH * mark


@lru_cache(maxsize=32)
def _background(image_size: int, orient_idx: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per subpixel: material (sky/wall/floor), shade and distance along the ray for the empty room."""
    origin, dirs = _camera(image_size, orient_idx)
    dx, dy, dz = dirs[..., 0], dirs[..., 1], dirs[..., 2]
    with np.errstate(divide="ignore"):
        t_left = np.where(dx < 0, (-_ROOM_HALF - origin[0]) / dx, np.inf)
        t_right = np.where(dx > 0, (_ROOM_HALF - origin[0]) / dx, np.inf)
        t_back = np.where(dy > 0, (_ROOM_HALF - origin[1]) / dy, np.inf)
        t_floor = np.where(dz < 0, -origin[2] / dz, np.inf)
    t_wall = np.minimum(np.minimum(t_left, t_right), t_back)
    z_wall = origin[2] + t_wall * dz
    material = np.where(t_floor < t_wall, _FLOOR, np.where(z_wall <= _WALL_HEIGHT, _WALL, _SKY))
    t = np.where(material == _FLOOR, t_floor, np.where(material == _WALL, t_wall, np.inf))

    hit = origin + np.where(np.isfinite(t), t, 0.0)[..., None] * dirs
    which = np.select([t_wall == t_back, t_wall == t_left], [0, 1], 2)
    along = np.where(which == 0, hit[..., 0], hit[..., 1])
    wall_shade = np.choose(which, [_WALL_SHADE["back"], _WALL_SHADE["left"], _WALL_SHADE["right"]])
    wall_shade = wall_shade * _wall_texture(along, hit[..., 2])
    shade = np.where(material == _WALL, wall_shade, 0.0)
    shade = np.where(material == _FLOOR, _floor_light(hit), shade)
    return material, shade, t


def _floor_light(points: np.ndarray) -> np.ndarray:
    """Unshadowed floor shade: the key light with cosine and inverse-square falloff (no ambient term
    was needed to match the real floor)."""
    to_light = _FLOOR_LIGHT_POS - points
    dist = np.linalg.norm(to_light, axis=-1)
    return _FLOOR_KEY * (to_light[..., 2] / dist) * (_FLOOR_LIGHT_POS[2] / dist) ** 2


# --- ray / primitive intersection --------------------------------------------------------------------
# Each returns the distance t along (origin + t * dirs) to the first hit (inf on a miss) and the normal.


def _hit_sphere(o: np.ndarray, d: np.ndarray, centre: np.ndarray, radius: float):
    oc = o - centre
    b = np.sum(oc * d, axis=-1)
    c = np.sum(oc * oc, axis=-1) - radius**2
    disc = b * b - c
    root = np.sqrt(np.maximum(disc, 0.0))
    t = np.where(disc >= 0, -b - root, np.inf)
    t = np.where(t > 1e-6, t, np.inf)
    normal = (o + np.where(np.isfinite(t), t, 0.0)[..., None] * d - centre) / radius
    return t, normal


def _hit_box(o: np.ndarray, d: np.ndarray, lo: np.ndarray, hi: np.ndarray):
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = 1.0 / d
        t1, t2 = (lo - o) * inv, (hi - o) * inv
    # 0 * inf is nan for a ray parallel to a slab and starting on its plane: treat it as unbounded.
    t_near_axes = np.where(np.isnan(t1), -np.inf, np.minimum(t1, t2))
    t_far = np.where(np.isnan(t1), np.inf, np.maximum(t1, t2)).min(axis=-1)
    t_near = t_near_axes.max(axis=-1)
    t = np.where((t_near <= t_far) & (t_near > 1e-6), t_near, np.inf)
    axis = t_near_axes.argmax(axis=-1)
    normal = np.zeros(d.shape)
    np.put_along_axis(normal, axis[..., None], -np.sign(np.take_along_axis(d, axis[..., None], -1)), -1)
    return t, normal


def _hit_cylinder(o: np.ndarray, d: np.ndarray, radius: float, z0: float, z1: float, caps: bool):
    """Vertical cylinder on the z axis between heights z0 and z1 (side, plus flat caps if ``caps``)."""
    a = d[..., 0] ** 2 + d[..., 1] ** 2
    b = o[..., 0] * d[..., 0] + o[..., 1] * d[..., 1]
    c = o[..., 0] ** 2 + o[..., 1] ** 2 - radius**2
    disc = b * b - a * c
    with np.errstate(divide="ignore", invalid="ignore"):
        t_side = (-b - np.sqrt(np.maximum(disc, 0.0))) / a
    z_side = o[..., 2] + t_side * d[..., 2]
    t_side = np.where((disc >= 0) & (a > 1e-12) & (t_side > 1e-6) & (z_side >= z0) & (z_side <= z1),
                      t_side, np.inf)
    t_fin = np.where(np.isfinite(t_side), t_side, 0.0)
    t, normal = t_side, np.stack([o[..., 0] + t_fin * d[..., 0], o[..., 1] + t_fin * d[..., 1],
                                  np.zeros(t_side.shape)], axis=-1) / radius
    if caps:
        for height, sign in ((z1, 1.0), (z0, -1.0)):
            with np.errstate(divide="ignore", invalid="ignore"):
                t_cap = (height - o[..., 2]) / d[..., 2]
            px, py = o[..., 0] + t_cap * d[..., 0], o[..., 1] + t_cap * d[..., 1]
            t_cap = np.where((t_cap > 1e-6) & (px * px + py * py <= radius**2), t_cap, np.inf)
            closer = t_cap < t
            t = np.where(closer, t_cap, t)
            normal = np.where(closer[..., None], np.array([0.0, 0.0, sign]), normal)
    return np.where(np.isnan(t), np.inf, t), normal


def _hit_object(o: np.ndarray, d: np.ndarray, shape: int, scale: float):
    if shape == 0:
        half = 0.5 * _CUBE_SIDE * scale
        return _hit_box(o, d, np.array([-half, -half, 0.0]), np.array([half, half, 2 * half]))
    if shape == 1:
        return _hit_cylinder(o, d, _CYL_RADIUS * scale, 0.0, _CYL_HEIGHT * scale, caps=True)
    if shape == 2:
        radius = _SPHERE_RADIUS * scale
        return _hit_sphere(o, d, np.array([0.0, 0.0, radius]), radius)
    radius, height = _CAPSULE_RADIUS * scale, _CAPSULE_HEIGHT * scale
    t, normal = _hit_cylinder(o, d, radius, radius, height - radius, caps=False)
    for z in (radius, height - radius):
        t_cap, n_cap = _hit_sphere(o, d, np.array([0.0, 0.0, z]), radius)
        closer = t_cap < t
        t, normal = np.where(closer, t_cap, t), np.where(closer[..., None], n_cap, normal)
    return t, normal


def _light_samples() -> np.ndarray:
    """Fixed points on a disc facing down (the area light), for reproducible soft shadows."""
    k = np.arange(_LIGHT_SAMPLES) + 0.5
    r = _LIGHT_RADIUS * np.sqrt(k / _LIGHT_SAMPLES)
    phi = k * np.pi * (3.0 - np.sqrt(5.0))  # golden-angle spiral: even coverage without randomness
    return _LIGHT_POS + np.stack([r * np.cos(phi), r * np.sin(phi), np.zeros_like(r)], axis=-1)


def _shadow(points: np.ndarray, shape: int, scale: float) -> np.ndarray:
    """Fraction of the area light that the object hides from each floor point (0 = fully lit)."""
    blocked = np.zeros(points.shape[:-1])
    for light in _light_samples():
        to_light = light - points
        dist = np.linalg.norm(to_light, axis=-1, keepdims=True)
        t, _ = _hit_object(points, to_light / dist, shape, scale)
        blocked += t < dist[..., 0]
    return blocked / _LIGHT_SAMPLES


def _object_shading(normal: np.ndarray, dirs: np.ndarray, points: np.ndarray):
    """V multiplier and white highlight of the object: head light from the camera plus the key light."""
    head = np.clip(-np.sum(normal * dirs, axis=-1), 0.0, 1.0)
    to_light = _LIGHT_POS - points
    key = np.clip(np.sum(normal * to_light, axis=-1) / np.linalg.norm(to_light, axis=-1), 0.0, 1.0)
    # The real renders whiten the top of objects a little (a broad highlight), hence the white term.
    return _OBJ_AMBIENT + _OBJ_HEAD * head + _OBJ_KEY * key, _OBJ_WHITE * np.sqrt(key)


@lru_cache(maxsize=_NUM_GEOMETRY)
def _geometry_maps(image_size: int, geometry: int) -> np.ndarray:
    """(S*S, 6) float32 per pixel: constant R, G, B (0..255) and the weights of wall, floor, object hue.

    ``geometry`` is the flat index of (scale, shape, orientation), orientation fastest.
    """
    scale_idx, shape, orient_idx = np.unravel_index(geometry, FACTOR_SIZES[3:])
    scale = float(FACTOR_VALUES[3][scale_idx])
    origin, dirs = _camera(image_size, int(orient_idx))
    material, shade, t_bg = _background(image_size, int(orient_idx))
    t_obj, normal = _hit_object(np.broadcast_to(origin, dirs.shape), dirs, int(shape), scale)
    on_object = t_obj < t_bg
    obj_points = origin + np.where(on_object, t_obj, 0.0)[..., None] * dirs
    obj_shade, obj_white = _object_shading(normal, dirs, obj_points)

    floor = (material == _FLOOR) & ~on_object
    floor_points = origin + t_bg[floor][:, None] * dirs[floor]
    floor_shade = shade.copy()
    # Only points near the object can be shadowed; skipping the rest keeps this cheap.
    near = np.abs(floor_points[:, :2]).max(axis=-1) < 3.0 * scale + 1.0
    shadowed = np.zeros(len(floor_points))
    shadowed[near] = _shadow(floor_points[near], int(shape), scale)
    floor_shade[floor] *= 1.0 - _SHADOW_DEPTH * shadowed

    constant = np.where(((material == _SKY) & ~on_object)[..., None], SKY_RGB, 0.0)
    constant = constant + np.where(on_object, obj_white, 0.0)[..., None] * 255.0
    weights = np.stack([np.where((material == _WALL) & ~on_object, shade, 0.0),
                        np.where(floor, floor_shade, 0.0),
                        np.where(on_object, obj_shade, 0.0)], axis=-1)
    sub = np.concatenate([constant, weights], axis=-1)
    ss = _supersampling(image_size)
    pixels = sub.reshape(image_size, ss, image_size, ss, 6).mean(axis=(1, 3))
    out = pixels.reshape(image_size * image_size, 6).astype(np.float32)
    out.flags.writeable = False
    return out


def _colour_matrices(classes: np.ndarray) -> np.ndarray:
    """(N, 6, 3): maps [constant RGB, wall, floor, object weights] to RGB for each image."""
    hues = hsv_colours(FACTOR_VALUES[0]).astype(np.float32)  # all three hue factors share the values
    mats = np.zeros((len(classes), 6, 3), dtype=np.float32)
    mats[:, [0, 1, 2], [0, 1, 2]] = 1.0
    mats[:, 3] = hues[classes[:, 1]]
    mats[:, 4] = hues[classes[:, 0]]
    mats[:, 5] = hues[classes[:, 2]]
    return mats


def _check_classes(classes: np.ndarray, image_size: int) -> np.ndarray:
    classes = np.asarray(classes)
    if classes.ndim != 2 or classes.shape[1] != len(FACTOR_SIZES):
        raise UserError(f"classes must have shape (N, {len(FACTOR_SIZES)}), got {classes.shape}")
    if not np.issubdtype(classes.dtype, np.integer):
        raise UserError(f"classes must be integer class indices, got dtype {classes.dtype}")
    if len(classes) and ((classes < 0).any() or (classes >= np.array(FACTOR_SIZES)).any()):
        raise UserError(f"classes out of range for factor sizes {FACTOR_SIZES}")
    if int(image_size) != image_size or image_size < 8:
        raise UserError(f"image_size must be an integer of at least 8, got {image_size}")
    return classes.astype(np.int64)


def render_shapes3d(classes: np.ndarray, image_size: int = 64) -> np.ndarray:
    """Render 3D Shapes look-alike images for (N, 6) factor class indices, file order.

    Returns (N, image_size, image_size, 3) uint8. Deterministic: the same classes give the same pixels.
    """
    classes = _check_classes(classes, image_size)
    size = int(image_size)
    out = np.empty((len(classes), size, size, 3), dtype=np.uint8)
    geometry = np.ravel_multi_index(tuple(classes[:, 3:].T), FACTOR_SIZES[3:]) if len(classes) else []
    colours = _colour_matrices(classes)
    # One small matrix product per geometry; the loop runs over at most 480 combinations.
    for g in np.unique(geometry):
        rows = np.flatnonzero(geometry == g)
        for start in range(0, len(rows), 1024):  # bounds the float32 temporaries
            part = rows[start:start + 1024]
            rgb = np.matmul(_geometry_maps(size, int(g)), colours[part])
            np.clip(rgb, 0.0, 255.0, out=rgb)
            rgb += 0.5
            out[part] = rgb.reshape(len(part), size, size, 3).astype(np.uint8)
    return out
