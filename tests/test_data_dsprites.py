"""dSprites: official npz/hdf5 layouts, the look-alike renderer, the reader's errors and the cache."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest

import latentquant.data.lookalike.dsprites as render_module
from latentquant import data
from latentquant.data import dsprites
from latentquant.data._common import classes_to_values
from latentquant.data.dsprites import (
    FACTOR_NAMES,
    FACTOR_SIZES,
    FACTOR_VALUES,
    FILE_FACTOR_SIZES,
    load_dsprites,
    read_dsprites,
    write_dsprites_npz,
)
from latentquant.data.lookalike.dsprites import render_dsprites
from latentquant.errors import UserError

N_SUBSET = 200
STRIDES = np.array([737280, 245760, 40960, 1024, 32, 1])


def _subset_classes(n: int = N_SUBSET, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(dsprites.NUM_IMAGES, size=n, replace=False))
    return np.stack(np.unravel_index(idx, FILE_FACTOR_SIZES), axis=1).astype(np.int64)


def _official_arrays(classes: np.ndarray) -> dict[str, np.ndarray]:
    values = np.stack([dsprites.FILE_FACTOR_VALUES[k][classes[:, k]] for k in range(6)], axis=1)
    return {"imgs": render_dsprites(classes[:, 1:]), "latents_classes": classes, "latents_values": values}


class _Trap:
    """Stands in for the official pickled metadata: unpickling it fails the test."""

    def __reduce__(self):
        return (pytest.fail, ("the reader unpickled 'metadata'",))


def _write_npz(path: Path, arrays: dict[str, np.ndarray], metadata: bool = True) -> Path:
    extra = {"metadata": np.array({"trap": _Trap()}, dtype=object)} if metadata else {}
    np.savez_compressed(path, **extra, **arrays)
    return path


def _write_hdf5(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    with h5py.File(path, "w") as f:
        f.create_dataset("imgs", data=arrays["imgs"], chunks=True, compression="gzip")
        if "latents_classes" in arrays:
            f.create_dataset("latents/classes", data=arrays["latents_classes"])
        f.create_dataset("latents/values", data=arrays["latents_values"])
    return path


@pytest.fixture(scope="module")
def official(tmp_path_factory) -> dict[str, np.ndarray]:
    return _official_arrays(_subset_classes())


@pytest.fixture(scope="module")
def npz_file(tmp_path_factory, official) -> Path:
    return _write_npz(tmp_path_factory.mktemp("dsp") / "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz", official)


@pytest.fixture(scope="module")
def hdf5_file(tmp_path_factory, official) -> Path:
    return _write_hdf5(tmp_path_factory.mktemp("dsp") / "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.hdf5", official)


def _one(shape: int, scale: int = 5, orientation: int = 0, pos_x: int = 16, pos_y: int = 16) -> np.ndarray:
    return render_dsprites(np.array([[shape, scale, orientation, pos_x, pos_y]]))[0]


def _centroid(image: np.ndarray) -> tuple[float, float]:
    rows, cols = np.nonzero(image)
    return float(cols.mean() + 0.5), float(rows.mean() + 0.5)


def _extent(image: np.ndarray) -> tuple[int, int]:
    rows, cols = np.nonzero(image)
    return int(cols.max() - cols.min() + 1), int(rows.max() - rows.min() + 1)


# --- factor grid --------------------------------------------------------------------------------------


def test_factor_grid_matches_the_official_metadata():
    assert FACTOR_NAMES == ["shape", "scale", "orientation", "posX", "posY"]
    assert FACTOR_SIZES == (3, 6, 40, 32, 32) and FILE_FACTOR_SIZES == (1, 3, 6, 40, 32, 32)
    assert dsprites.NUM_IMAGES == 737_280
    np.testing.assert_array_equal(FACTOR_VALUES[0], [1.0, 2.0, 3.0])
    np.testing.assert_allclose(FACTOR_VALUES[1], [0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
    np.testing.assert_allclose(FACTOR_VALUES[2][[0, 1, 39]], [0.0, 0.16110732, 2 * np.pi])
    np.testing.assert_allclose(FACTOR_VALUES[3][[0, 1, 31]], [0.0, 0.03225806, 1.0], atol=1e-8)
    strides = [int(np.prod(FILE_FACTOR_SIZES[k + 1:])) for k in range(6)]  # row-major, posY fastest
    assert strides == STRIDES.tolist()
    assert np.ravel_multi_index((0, 2, 5, 39, 31, 31), FILE_FACTOR_SIZES) == dsprites.NUM_IMAGES - 1
    # The notebook's examples: index 1 moves posY, index 32 moves posX.
    assert np.unravel_index(32, FILE_FACTOR_SIZES) == (0, 0, 0, 0, 1, 0)


# --- reading official-layout files -----------------------------------------------------------------------


@pytest.mark.parametrize("which", ["npz_file", "hdf5_file"])
def test_round_trip(request, official, which):
    got = read_dsprites(request.getfixturevalue(which))
    assert got.name == "dsprites" and len(got) == N_SUBSET and got.image_shape == (64, 64, 1)
    assert got.images.dtype == np.uint8 and set(np.unique(got.images)) == {0, 255}
    np.testing.assert_array_equal(got.images[..., 0], official["imgs"] * 255)
    np.testing.assert_array_equal(got.factors, official["latents_classes"][:, 1:])  # colour dropped
    assert got.factor_names == FACTOR_NAMES and got.factor_sizes == list(FACTOR_SIZES)
    np.testing.assert_allclose(got.values(), official["latents_values"][:, 1:], atol=1e-12)


def test_format_is_told_by_content_not_name(tmp_path, npz_file, hdf5_file):
    swapped = tmp_path / "looks-like.hdf5"
    shutil.copy(npz_file, swapped)
    assert len(read_dsprites(swapped)) == N_SUBSET
    swapped = tmp_path / "looks-like.npz"
    shutil.copy(hdf5_file, swapped)
    assert len(read_dsprites(swapped)) == N_SUBSET


def test_subset_rows_may_come_in_any_order(tmp_path, official):
    perm = np.random.default_rng(0).permutation(N_SUBSET)
    shuffled = {k: v[perm] for k, v in official.items()}
    got = read_dsprites(_write_npz(tmp_path / "s.npz", shuffled))
    np.testing.assert_array_equal(got.factors, official["latents_classes"][perm, 1:])


def test_full_grid_must_follow_the_row_major_rule():
    classes = np.stack(np.unravel_index(np.arange(dsprites.NUM_IMAGES), FILE_FACTOR_SIZES), axis=1)
    np.testing.assert_array_equal(classes @ STRIDES, np.arange(dsprites.NUM_IMAGES))
    values = classes_to_values(classes, dsprites.FILE_FACTOR_VALUES)
    dsprites._check_labels(classes, values, dsprites._NPZ_KEYS, Path("f.npz"))  # the official order passes
    classes[[5, 6]] = classes[[6, 5]]
    values[[5, 6]] = values[[6, 5]]
    with pytest.raises(UserError, match="row 5 holds grid point 6; .*row-major"):
        dsprites._check_labels(classes, values, dsprites._NPZ_KEYS, Path("f.npz"))


# --- writing the look-alike ------------------------------------------------------------------------------


def test_written_npz_has_the_official_layout(tmp_path):
    path = write_dsprites_npz(tmp_path / "l.npz", subset=50, seed=2)
    with np.load(path, allow_pickle=False) as f:
        assert sorted(f.files) == ["imgs", "latents_classes", "latents_values"]
        imgs, classes, values = f["imgs"], f["latents_classes"], f["latents_values"]
    assert imgs.dtype == np.uint8 and imgs.shape == (50, 64, 64) and imgs.max() == 1
    assert classes.dtype == np.int64 and classes.shape == (50, 6) and not classes[:, 0].any()
    assert values.dtype == np.float64 and values.shape == (50, 6) and np.all(values[:, 0] == 1.0)
    flat = classes @ STRIDES
    assert np.all(np.diff(flat) > 0) and flat[-1] > 1000  # grid order, no repeats, a spread-out sample
    np.testing.assert_array_equal(imgs, render_dsprites(classes[:, 1:]))
    got = read_dsprites(path)
    np.testing.assert_array_equal(got.factors, classes[:, 1:])


def test_subset_is_seeded(tmp_path):
    a, b, c = (read_dsprites(write_dsprites_npz(tmp_path / f"{n}.npz", subset=6, seed=s)).factors
               for n, s in (("a", 3), ("b", 3), ("c", 4)))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_failed_write_leaves_no_file(tmp_path, monkeypatch):
    def broken(factors):
        raise RuntimeError("killed")

    monkeypatch.setattr(render_module, "render_dsprites", broken)
    with pytest.raises(RuntimeError):
        write_dsprites_npz(tmp_path / "x.npz", subset=5)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("subset", [0, -1, 737_281, 2.5, True])
def test_bad_subset(tmp_path, subset):
    with pytest.raises(UserError, match="subset"):
        write_dsprites_npz(tmp_path / "x.npz", subset=subset)


# --- renderer ------------------------------------------------------------------------------------------


def test_images_are_binary_and_deterministic():
    classes = _subset_classes(64, seed=5)[:, 1:]
    first = render_dsprites(classes)
    assert first.dtype == np.uint8 and set(np.unique(first)) == {0, 1}
    assert first.reshape(64, -1).sum(axis=1).min() > 30  # every image shows a sprite
    render_module._heart_mask.cache_clear()
    np.testing.assert_array_equal(first, render_dsprites(classes))


def test_square_size_and_place():
    square = _one(0)
    assert _extent(square) == (19, 19) and abs(int(square.sum()) - 366) <= 10  # side 19.1 px, measured area
    assert _centroid(square) == pytest.approx((32.5, 32.5))  # 64 * (0.25 + 0.5 * 16/31)
    small = _one(0, scale=0)
    assert _extent(small) == (9, 9)  # scale 0.5


@pytest.mark.parametrize(("pos_x", "pos_y", "centre"), [(0, 0, (16, 16)), (31, 0, (48, 16)), (0, 31, (16, 48))])
def test_position_moves_the_centre(pos_x, pos_y, centre):
    # posX indexes columns, posY rows with posY = 0 at the top; centres span the middle half of the image.
    image = _one(1, pos_x=pos_x, pos_y=pos_y)
    assert _centroid(image) == pytest.approx(centre, abs=0.6)


def test_ellipse_axes_and_rotation():
    flat = _one(1)
    assert _extent(flat) == (23, 13) and abs(int(flat.sum()) - 235) <= 12
    upright = _one(1, orientation=10)  # 10/39 of a turn is about 92 degrees
    width, height = _extent(upright)
    assert height >= 22 and width <= 14
    np.testing.assert_array_equal(_one(1, orientation=0), _one(1, orientation=39))  # 0 and 2 pi


def test_heart_size_and_pose():
    heart = _one(2)
    width, height = _extent(heart)
    assert 16 <= width <= 18 and 16 <= height <= 18 and abs(int(heart.sum()) - 183) <= 12
    rows = np.flatnonzero(heart.any(axis=1))
    top, bottom = heart[rows[2]].sum(), heart[rows[-2]].sum()
    assert top > 3 * bottom  # lobes at the top, point at the bottom
    left, right = heart[:, :32].sum(), heart[:, 33:].sum()
    assert abs(int(left) - int(right)) <= 4  # symmetric about its vertical axis
    assert not np.array_equal(_one(2, orientation=5), heart)


def test_scale_grows_every_shape():
    for shape in range(3):
        areas = [int(_one(shape, scale=s).sum()) for s in range(6)]
        assert areas == sorted(areas) and areas[5] > 3 * areas[0], (shape, areas)


def test_sprites_stay_inside_the_canvas():
    # The notebook: pixels never leave the canvas, even for the largest sprite in a corner at 45 degrees.
    corners = [(x, y) for x in (0, 31) for y in (0, 31)]
    classes = np.array([[shape, 5, o, x, y] for shape in range(3) for o in (0, 5, 10) for x, y in corners])
    images = render_dsprites(classes)
    centred = render_dsprites(np.column_stack([classes[:, :3], np.full((len(classes), 2), 16)]))
    assert not (images[:, 0].any() or images[:, -1].any() or images[:, :, 0].any() or images[:, :, -1].any())
    ratio = images.reshape(len(images), -1).sum(1) / centred.reshape(len(images), -1).sum(1)
    assert np.all(np.abs(ratio - 1) < 0.15)  # not clipped by the render window


# --- bad inputs ----------------------------------------------------------------------------------------


def test_missing_file(tmp_path):
    with pytest.raises(UserError, match="dSprites file not found"):
        read_dsprites(tmp_path / "nope.npz")
    with pytest.raises(UserError, match="it is a folder"):
        read_dsprites(tmp_path)


def test_neither_npz_nor_hdf5(tmp_path):
    path = tmp_path / "dsprites.npz"
    path.write_text("hello")
    with pytest.raises(UserError, match="neither an npz .* nor an HDF5 file"):
        read_dsprites(path)


@pytest.mark.parametrize("which", ["npz_file", "hdf5_file"])
@pytest.mark.parametrize("fraction", [0.5, 0.97])
def test_truncated_file(request, tmp_path, which, fraction):
    source = request.getfixturevalue(which)
    path = tmp_path / source.name
    path.write_bytes(source.read_bytes()[: int(source.stat().st_size * fraction)])
    with pytest.raises(UserError, match="truncated"):
        read_dsprites(path)


def test_corrupt_npz_member(tmp_path, official):
    path = _write_npz(tmp_path / "c.npz", official, metadata=False)
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("imgs.npy")
    middle = info.header_offset + 100 + info.compress_size // 2
    raw[middle:middle + 64] = bytes(64)
    path.write_bytes(bytes(raw))
    with pytest.raises(UserError, match="reading failed .*corrupt"):
        read_dsprites(path)


def test_missing_npz_key_lists_the_keys(tmp_path, official):
    arrays = {k: v for k, v in official.items() if k != "latents_values"}
    path = _write_npz(tmp_path / "m.npz", arrays)
    with pytest.raises(UserError, match=r"'latents_values' is missing \(keys present: imgs, latents_classes, metadata"):
        read_dsprites(path)


def test_missing_hdf5_key_lists_the_keys(tmp_path, official):
    arrays = {k: v for k, v in official.items() if k != "latents_classes"}
    path = _write_hdf5(tmp_path / "m.hdf5", arrays)
    with pytest.raises(UserError, match=r"'latents/classes' is missing \(keys present: imgs, latents/values\)"):
        read_dsprites(path)


@pytest.mark.parametrize(("key", "dtype", "message"), [
    ("imgs", np.float32, "'imgs' has dtype float32, expected uint8"),
    ("imgs", object, "'imgs' has dtype object, expected uint8"),
    ("latents_classes", np.float64, "'latents_classes' has dtype float64, expected int64"),
    ("latents_values", np.int64, "'latents_values' has dtype int64, expected float64"),
])
def test_wrong_dtype(tmp_path, official, key, dtype, message):
    arrays = dict(official, **{key: official[key].astype(dtype)})
    with pytest.raises(UserError, match=message):
        read_dsprites(_write_npz(tmp_path / "d.npz", arrays, metadata=False))


@pytest.mark.parametrize(("key", "cut", "message"), [
    ("imgs", np.s_[:, :32], r"'imgs' has shape \(200, 32, 64\), expected \(N, 64, 64\)"),
    ("imgs", np.s_[:0], r"'imgs' has shape \(0, 64, 64\)"),
    ("latents_classes", np.s_[:, 1:], r"'latents_classes' has shape \(200, 5\), expected \(200, 6\)"),
    ("latents_values", np.s_[:150], r"'latents_values' has shape \(150, 6\), expected \(200, 6\)"),
])
def test_wrong_shape(tmp_path, official, key, cut, message):
    arrays = dict(official, **{key: official[key][cut]})
    with pytest.raises(UserError, match=message):
        read_dsprites(_write_npz(tmp_path / "s.npz", arrays))


def test_hdf5_wrong_shape(tmp_path, official):
    arrays = dict(official, imgs=official["imgs"][..., None])
    with pytest.raises(UserError, match=r"'imgs' has shape \(200, 64, 64, 1\)"):
        read_dsprites(_write_hdf5(tmp_path / "s.hdf5", arrays))


def test_images_must_be_zero_one(tmp_path, official):
    arrays = dict(official, imgs=official["imgs"] * 255)  # what some tools re-save
    with pytest.raises(UserError, match="'imgs' holds values up to 255, expected the official 0/1 images"):
        read_dsprites(_write_npz(tmp_path / "v.npz", arrays))


@pytest.mark.parametrize(("column", "value", "message"), [
    (0, 1, "factor 'color' has class 1 at row 7, outside 0..0"),
    (2, 6, "factor 'scale' has class 6 at row 7, outside 0..5"),
    (5, -1, "factor 'posY' has class -1 at row 7, outside 0..31"),
])
def test_off_grid_classes(tmp_path, official, column, value, message):
    classes = official["latents_classes"].copy()
    classes[7, column] = value
    with pytest.raises(UserError, match=message):
        read_dsprites(_write_npz(tmp_path / "c.npz", dict(official, latents_classes=classes)))


@pytest.mark.parametrize("bad", [0.55, np.nan])
def test_values_must_agree_with_classes(tmp_path, official, bad):
    values = official["latents_values"].copy()
    values[9, 2] = bad
    with pytest.raises(UserError, match="'latents/values' factor 'scale' has value .* at row 9, but its class"):
        read_dsprites(_write_hdf5(tmp_path / "v.hdf5", dict(official, latents_values=values)))


def test_duplicate_rows(tmp_path, official):
    arrays = {k: np.concatenate([v, v[3:4]]) for k, v in official.items()}
    with pytest.raises(UserError, match=r"rows 3 and 200 both hold grid point"):
        read_dsprites(_write_npz(tmp_path / "d.npz", arrays))


@pytest.mark.parametrize("size", [32, 128, True, "64"])
def test_image_size_must_be_64(npz_file, size):
    with pytest.raises(UserError, match="image_size must be 64"):
        load_dsprites(npz_file, image_size=size)


# --- public API and the look-alike cache ---------------------------------------------------------------


def test_load_dispatches_by_name(npz_file, hdf5_file):
    assert "dsprites" in data.DATASETS
    for path in (npz_file, hdf5_file):
        got = data.load("dsprites", path=str(path), image_size=64)
        assert isinstance(got, data.GroundTruthData) and len(got) == N_SUBSET and got.image_shape == (64, 64, 1)
    with pytest.raises(UserError, match="unknown dataset 'dsprite'; known datasets: .*dsprites, .*shapes3d"):
        data.load("dsprite")


def test_lookalike_is_rendered_once_into_the_cache(tmp_path, monkeypatch, capsys):
    calls = []

    def small_write(path):  # the full grid takes about a minute: write a small subset instead
        calls.append(path)
        return write_dsprites_npz(path, subset=30)

    monkeypatch.setenv("LATENTQUANT_CACHE", str(tmp_path))
    monkeypatch.setattr(dsprites, "write_dsprites_npz", small_write)
    first = load_dsprites()
    assert "rendering the dSprites look-alike" in capsys.readouterr().err
    assert (tmp_path / "dsprites-lookalike-v1.npz").is_file() and len(first) == 30
    second = load_dsprites()
    assert len(calls) == 1 and capsys.readouterr().err == ""
    np.testing.assert_array_equal(first.images, second.images)
    other = tmp_path / "elsewhere"
    load_dsprites(cache_dir=other)
    assert (other / "dsprites-lookalike-v1.npz").is_file() and len(calls) == 2
