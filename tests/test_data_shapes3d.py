"""3D Shapes: official file layout, the look-alike renderer, the reader's errors and the cache."""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

import latentquant.data.lookalike.shapes3d as render_module
from latentquant import data
from latentquant.data import shapes3d
from latentquant.data.lookalike.shapes3d import SKY_RGB, render_shapes3d
from latentquant.data.shapes3d import (
    FACTOR_NAMES,
    FACTOR_SIZES,
    FACTOR_VALUES,
    load_shapes3d,
    read_shapes3d_h5,
    write_shapes3d_h5,
)
from latentquant.errors import UserError

SIZE = 32
N_SUBSET = 200
# Red floor, blue wall, green object, smallest cube, camera at -30 degrees.
BASE = np.array([0, 6, 3, 0, 0, 0])


@pytest.fixture(scope="module")
def small_file(tmp_path_factory) -> Path:
    return write_shapes3d_h5(tmp_path_factory.mktemp("s3d") / "3dshapes.h5", image_size=SIZE,
                             subset=N_SUBSET, seed=0)


def _vary(k: int, values: list[int]) -> np.ndarray:
    classes = np.repeat(BASE[None], len(values), axis=0)
    classes[:, k] = values
    return classes


def _write_raw(path: Path, **datasets) -> Path:
    with h5py.File(path, "w") as f:
        for key, value in datasets.items():
            f.create_dataset(key, data=value)
    return path


def _valid_arrays(n: int = 4) -> tuple[np.ndarray, np.ndarray]:
    classes = np.stack(np.unravel_index(np.arange(n), FACTOR_SIZES), axis=1)
    labels = np.stack([FACTOR_VALUES[k][classes[:, k]] for k in range(6)], axis=1)
    return np.zeros((n, 8, 8, 3), np.uint8), labels


# --- factor grid --------------------------------------------------------------------------------------


def test_factor_grid_matches_the_real_file():
    assert FACTOR_NAMES == ["floor_hue", "wall_hue", "object_hue", "scale", "shape", "orientation"]
    assert FACTOR_SIZES == (10, 10, 10, 8, 4, 15)
    assert shapes3d.NUM_IMAGES == 480_000
    np.testing.assert_allclose(FACTOR_VALUES[0], [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9])
    np.testing.assert_allclose(FACTOR_VALUES[3][[0, 1, 7]], [0.75, 0.82142857, 1.25])
    np.testing.assert_array_equal(FACTOR_VALUES[4], [0, 1, 2, 3])
    np.testing.assert_allclose(FACTOR_VALUES[5][[0, 7, 14]], [-30.0, 0.0, 30.0])
    # Row-major strides of the official file, orientation fastest.
    strides = [np.ravel_multi_index(tuple(np.eye(6, dtype=int)[k]), FACTOR_SIZES) for k in range(6)]
    assert strides == [48000, 4800, 480, 60, 15, 1]


# --- file layout and round trip --------------------------------------------------------------------


def test_written_file_has_the_official_layout(small_file):
    with h5py.File(small_file, "r") as f:
        assert set(f.keys()) == {"images", "labels"}
        assert f["images"].dtype == np.uint8 and f["images"].shape == (N_SUBSET, SIZE, SIZE, 3)
        assert f["labels"].dtype == np.float64 and f["labels"].shape == (N_SUBSET, 6)


def test_labels_are_real_values_in_row_major_order(small_file):
    with h5py.File(small_file, "r") as f:
        labels = f["labels"][()]
    classes = np.empty(labels.shape, dtype=int)
    for k, values in enumerate(FACTOR_VALUES):
        distance = np.abs(labels[:, k, None] - values[None, :])
        assert distance.min(axis=1).max() < 1e-9, FACTOR_NAMES[k]  # exact stored values, not indices
        classes[:, k] = distance.argmin(axis=1)
    flat = classes @ np.array([48000, 4800, 480, 60, 15, 1])
    assert np.all(np.diff(flat) > 0)  # sorted grid order, no duplicates
    assert len(np.unique(classes[:, 5])) > 5  # a real random subset, not the first rows


def test_round_trip_gives_factors_consistent_with_labels(small_file):
    got = read_shapes3d_h5(small_file)
    with h5py.File(small_file, "r") as f:
        labels, images = f["labels"][()], f["images"][()]
    assert len(got) == N_SUBSET and got.image_shape == (SIZE, SIZE, 3)
    assert got.factor_sizes == list(FACTOR_SIZES) and got.factor_names == FACTOR_NAMES
    np.testing.assert_allclose(got.values(), labels, atol=1e-12)
    np.testing.assert_array_equal(got.images, images)
    np.testing.assert_array_equal(got.images[:20], render_shapes3d(got.factors[:20], SIZE))


def test_subset_is_seeded(tmp_path):
    first = write_shapes3d_h5(tmp_path / "a.h5", image_size=SIZE, subset=6, seed=3)
    again = write_shapes3d_h5(tmp_path / "b.h5", image_size=SIZE, subset=6, seed=3)
    other = write_shapes3d_h5(tmp_path / "c.h5", image_size=SIZE, subset=6, seed=4)
    labels = [h5py.File(p, "r")["labels"][()] for p in (first, again, other)]
    np.testing.assert_array_equal(labels[0], labels[1])
    assert not np.array_equal(labels[0], labels[2])


def test_failed_write_leaves_no_file(tmp_path, monkeypatch):
    def broken(classes, image_size):
        raise RuntimeError("killed")

    monkeypatch.setattr(render_module, "render_shapes3d", broken)
    with pytest.raises(RuntimeError):
        write_shapes3d_h5(tmp_path / "x.h5", image_size=SIZE, subset=5)
    assert list(tmp_path.iterdir()) == []


# --- renderer ------------------------------------------------------------------------------------------


def test_renderer_is_deterministic():
    classes = np.array([[1, 2, 3, 4, 1, 5], [9, 0, 5, 7, 3, 14]])
    first = render_shapes3d(classes, SIZE)
    render_module._geometry_maps.cache_clear()
    render_module._background.cache_clear()
    np.testing.assert_array_equal(first, render_shapes3d(classes, SIZE))


@pytest.mark.parametrize("size", [32, 64, 48])
def test_any_image_size_and_sky_colour(size):
    images = render_shapes3d(_vary(5, [0, 7, 14]), size)
    assert images.shape == (3, size, size, 3) and images.dtype == np.uint8
    sky = images[:, : size // 8].reshape(-1, 3).astype(int)  # the top eighth is sky at every azimuth
    assert np.abs(sky - SKY_RGB).max() <= 2


def test_floor_hue_changes_the_floor_not_the_sky_or_walls():
    a, b = render_shapes3d(_vary(0, [0, 5]), SIZE)
    assert (a[-3:] != b[-3:]).any(axis=-1).mean() > 0.9
    np.testing.assert_array_equal(a[: SIZE // 8], b[: SIZE // 8])
    np.testing.assert_array_equal(a[12:16, :4], b[12:16, :4])  # back wall, left edge


def test_wall_hue_changes_only_the_walls():
    a, b = render_shapes3d(_vary(1, [0, 5]), SIZE)
    changed = (a != b).any(axis=-1)
    assert changed[12:18].mean() > 0.6
    assert not changed[: SIZE // 8].any() and not changed[-2:].any()


def test_object_hue_changes_only_object_pixels():
    a, b = render_shapes3d(_vary(2, [0, 5]), SIZE)
    changed = (a != b).any(axis=-1)
    assert changed.sum() > 30
    rows, cols = np.nonzero(changed)
    assert 8 <= cols.min() and cols.max() <= 23 and rows.min() >= 14  # a small cube, centred, low


def test_scale_and_shape_change_the_image():
    small, large = render_shapes3d(_vary(3, [0, 7]), SIZE)
    assert (small != large).any(axis=-1).sum() > 40
    shapes = render_shapes3d(_vary(4, [0, 1, 2, 3]), SIZE)
    for i in range(4):
        for j in range(i):
            assert (shapes[i] != shapes[j]).any(axis=-1).sum() > 5


def test_orientation_rotates_the_room():
    left, centre, right = render_shapes3d(_vary(5, [0, 7, 14]), SIZE).astype(int)
    band = slice(10, 18)  # wall rows between sky and floor
    # At -30 degrees the corner and the darker side wall are on the right, at +30 on the left.
    assert left[band, -3:].sum() < left[band, :3].sum()
    assert right[band, :3].sum() < right[band, -3:].sum()
    assert abs(centre[band, :3].sum() - centre[band, -3:].sum()) < abs(left[band, :3].sum() - left[band, -3:].sum())
    assert (left[band] != right[band]).any(axis=-1).mean() > 0.2


# --- bad inputs ----------------------------------------------------------------------------------------


def test_missing_file(tmp_path):
    with pytest.raises(UserError, match="not found"):
        read_shapes3d_h5(tmp_path / "nope.h5")


def test_not_an_hdf5_file(tmp_path):
    path = tmp_path / "3dshapes.h5"
    path.write_text("hello")
    with pytest.raises(UserError, match="HDF5"):
        read_shapes3d_h5(path)


def test_truncated_file(small_file, tmp_path):
    path = tmp_path / "cut.h5"
    path.write_bytes(small_file.read_bytes()[: small_file.stat().st_size // 2])
    with pytest.raises(UserError, match="truncated"):
        read_shapes3d_h5(path)


def test_missing_key_names_the_key_and_lists_the_keys(tmp_path):
    images, _ = _valid_arrays()
    path = _write_raw(tmp_path / "x.h5", images=images, factors=np.zeros((4, 6)))
    with pytest.raises(UserError, match=r"'labels' is missing \(keys present: factors, images\)"):
        read_shapes3d_h5(path)


def test_wrong_dtype(tmp_path):
    images, labels = _valid_arrays()
    path = _write_raw(tmp_path / "x.h5", images=images.astype(np.float32), labels=labels)
    with pytest.raises(UserError, match="'images' has dtype float32, expected uint8"):
        read_shapes3d_h5(path)
    path = _write_raw(tmp_path / "y.h5", images=images, labels=labels.astype(np.int64))
    with pytest.raises(UserError, match="'labels' has dtype int64"):
        read_shapes3d_h5(path)


def test_wrong_shape(tmp_path):
    images, labels = _valid_arrays()
    path = _write_raw(tmp_path / "x.h5", images=images, labels=labels[:, :5])
    with pytest.raises(UserError, match="'labels' has shape"):
        read_shapes3d_h5(path)
    path = _write_raw(tmp_path / "y.h5", images=images[..., 0], labels=labels)
    with pytest.raises(UserError, match="'images' has shape"):
        read_shapes3d_h5(path)


def test_labels_off_the_grid(tmp_path):
    images, labels = _valid_arrays()
    labels[2, 0] = 0.55
    path = _write_raw(tmp_path / "x.h5", images=images, labels=labels)
    with pytest.raises(UserError, match="'floor_hue' has value 0.55 at row 2"):
        read_shapes3d_h5(path)


def test_nan_labels(tmp_path):
    images, labels = _valid_arrays()
    labels[1, 5] = np.nan
    path = _write_raw(tmp_path / "x.h5", images=images, labels=labels)
    with pytest.raises(UserError, match="'orientation' is NaN"):
        read_shapes3d_h5(path)


def test_image_size_must_match_the_file(small_file):
    with pytest.raises(UserError, match="32x32"):
        load_shapes3d(small_file, image_size=64)


@pytest.mark.parametrize("subset", [0, -1, 480_001, 2.5])
def test_bad_subset(tmp_path, subset):
    with pytest.raises(UserError, match="subset"):
        write_shapes3d_h5(tmp_path / "x.h5", image_size=SIZE, subset=subset)


def test_bad_image_size(tmp_path):
    with pytest.raises(UserError, match="image_size"):
        load_shapes3d(image_size=3, cache_dir=tmp_path)


# --- public API and the look-alike cache ---------------------------------------------------------------


def test_load_dispatches_by_name(small_file):
    got = data.load("shapes3d", path=small_file, image_size=SIZE)
    assert isinstance(got, data.GroundTruthData) and len(got) == N_SUBSET
    with pytest.raises(UserError, match="unknown dataset 'dsprite'.*shapes3d"):
        data.load("dsprite")


def test_lookalike_is_rendered_once_into_the_cache(tmp_path, monkeypatch, capsys, small_file):
    calls = []

    def fake_write(path, image_size):  # the full grid is too slow for a unit test: copy a small file
        calls.append(image_size)
        shutil.copy(small_file, path)

    monkeypatch.setenv("LATENTQUANT_CACHE", str(tmp_path))
    monkeypatch.setattr(shapes3d, "write_shapes3d_h5", fake_write)
    first = load_shapes3d(image_size=SIZE)
    assert "rendering the Shapes3D look-alike" in capsys.readouterr().err
    assert (tmp_path / f"shapes3d-lookalike-{SIZE}px-v1.h5").is_file()
    second = load_shapes3d(image_size=SIZE)
    assert calls == [SIZE] and capsys.readouterr().err == ""
    np.testing.assert_array_equal(first.factors, second.factors)
    other = tmp_path / "elsewhere"
    load_shapes3d(image_size=SIZE, cache_dir=other)
    assert (other / f"shapes3d-lookalike-{SIZE}px-v1.h5").is_file() and len(calls) == 2
