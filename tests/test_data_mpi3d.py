"""MPI3D: official npz layout, variant detection, row-major labels, memory mapping, errors, the look-alike."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np
import pytest

from latentquant import data
from latentquant.data import mpi3d
from latentquant.data.lookalike.mpi3d import BACKGROUND_RGB, STAGE_RGB, render_mpi3d
from latentquant.data.mpi3d import (
    FACTOR_NAMES,
    GRIDS,
    detect_variant,
    load_mpi3d,
    read_mpi3d_npz,
    write_mpi3d_npz,
)
from latentquant.errors import UserError

# Shrunk grids keep the same "6x6 versus 4x4" distinction (different N) at a few hundred images.
SMALL_GRIDS = {"6x6": (3, 2, 1, 1, 1, 2, 5), "4x4": (2, 2, 1, 1, 1, 2, 5)}
N6, N4 = 60, 40


@pytest.fixture
def small_grids(monkeypatch):
    monkeypatch.setattr(mpi3d, "GRIDS", dict(SMALL_GRIDS))


def _images(n: int, size: int = 64) -> np.ndarray:
    # Row i is filled with i % 251: each row is identifiable, so order mistakes show.
    return np.broadcast_to((np.arange(n) % 251).astype(np.uint8)[:, None, None, None], (n, size, size, 3)).copy()


def _savez(path: Path, compressed: bool = False, **arrays) -> Path:
    (np.savez_compressed if compressed else np.savez)(path, **arrays)
    return path


# --- factor grid ----------------------------------------------------------------------------------------


def test_factor_grid_matches_the_official_readme():
    assert FACTOR_NAMES == ["object_color", "object_shape", "object_size", "camera_height", "background_color",
                            "horizontal_axis", "vertical_axis"]
    assert GRIDS["6x6"] == (6, 6, 2, 3, 3, 40, 40) and np.prod(GRIDS["6x6"]) == 1_036_800
    assert GRIDS["4x4"] == (4, 4, 2, 3, 3, 40, 40) and np.prod(GRIDS["4x4"]) == 460_800
    strides6 = [int(np.ravel_multi_index(tuple(np.eye(7, dtype=int)[k]), GRIDS["6x6"])) for k in range(7)]
    strides4 = [int(np.ravel_multi_index(tuple(np.eye(7, dtype=int)[k]), GRIDS["4x4"])) for k in range(7)]
    assert strides6 == [172800, 28800, 14400, 4800, 1600, 40, 1]
    assert strides4 == [115200, 28800, 14400, 4800, 1600, 40, 1]
    names = mpi3d.value_names("toy")
    assert names[0] == ["white", "green", "red", "blue", "brown", "olive"]
    assert names[1] == ["cone", "cube", "cylinder", "hexagonal", "pyramid", "sphere"]
    assert mpi3d.value_names("real_complex")[1] == ["coffee-cup", "tennis-ball", "croissant", "beer-cup"]
    assert mpi3d.value_names("challenge_toy")[0] == ["green", "red", "blue", "brown"]


@pytest.mark.parametrize(("n", "name", "expected"), [
    (1_036_800, "mpi3d_toy.npz", "toy"),
    (1_036_800, "mpi3d_realistic.npz", "realistic"),
    (1_036_800, "mpi3d_real.npz", "real"),
    (1_036_800, "real.npz", "real"),
    (460_800, "real3d_complicated_shapes_ordered.npz", "real_complex"),
    (460_800, "mpi3d_real_complex.npz", "real_complex"),
    (460_800, "mpi3d_toy.npz", "challenge_toy"),
    (460_800, "sim_realistic_64x_ordered_without_heldout_factors.npz", "challenge_realistic"),
])
def test_variant_comes_from_n_then_the_file_name(n, name, expected):
    assert detect_variant(n, name) == expected


def test_n_matching_no_variant_is_a_user_error():
    with pytest.raises(UserError, match="1,000 images match no MPI3D variant"):
        detect_variant(1000, "mpi3d_toy.npz")


# --- reading official-layout files -----------------------------------------------------------------------


def test_row_major_labels_and_variant_by_n(small_grids, tmp_path):
    d = read_mpi3d_npz(_savez(tmp_path / "mpi3d_toy.npz", images=_images(N6)))
    assert d.name == "mpi3d_toy" and len(d) == N6 and d.factor_sizes == list(SMALL_GRIDS["6x6"])
    # Last factor fastest: row 1 is vertical_axis 1, row 5 is horizontal_axis 1, row 10 is the next shape.
    np.testing.assert_array_equal(d.factors[1], [0, 0, 0, 0, 0, 0, 1])
    np.testing.assert_array_equal(d.factors[5], [0, 0, 0, 0, 0, 1, 0])
    np.testing.assert_array_equal(d.factors[10], [0, 1, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(d.factors[59], [2, 1, 0, 0, 0, 1, 4])
    assert d.factors.dtype == np.int64
    np.testing.assert_array_equal(np.ravel_multi_index(d.factors.T, d.factor_sizes), np.arange(N6))
    np.testing.assert_array_equal(d.values(np.array([59]))[0], [2.0, 1.0, 0.0, 0.0, 0.0, 1.0, 4.0])

    four = read_mpi3d_npz(_savez(tmp_path / "real3d_complicated_shapes_ordered.npz", images=_images(N4)))
    assert four.name == "mpi3d_real_complex" and four.factor_sizes == list(SMALL_GRIDS["4x4"])
    challenge = read_mpi3d_npz(_savez(tmp_path / "mpi3d_toy.npz", images=_images(N4)))
    assert challenge.name == "mpi3d_challenge_toy"


def test_variant_override(small_grids, tmp_path):
    path = _savez(tmp_path / "renamed.npz", images=_images(N4))
    assert read_mpi3d_npz(path).name == "mpi3d_challenge_toy"
    assert read_mpi3d_npz(path, variant="real_complex").name == "mpi3d_real_complex"
    with pytest.raises(UserError, match=r"40 images, but variant 'toy' has 60"):
        read_mpi3d_npz(path, variant="toy")
    with pytest.raises(UserError, match="unknown MPI3D variant 'tiny'"):
        read_mpi3d_npz(path, variant="tiny")


def test_stored_member_is_memory_mapped_and_equals_np_load(small_grids, tmp_path):
    path = _savez(tmp_path / "mpi3d_toy.npz", images=_images(N6))
    d = read_mpi3d_npz(path)
    assert isinstance(d.images, np.memmap) and not d.images.flags.writeable
    np.testing.assert_array_equal(d.images, np.load(path)["images"])


def test_deflated_member_is_extracted_once_then_mapped(small_grids, tmp_path):
    path = _savez(tmp_path / "mpi3d_toy.npz", compressed=True, images=_images(N6))
    cache = tmp_path / "cache"
    d = read_mpi3d_npz(path, cache_dir=cache)
    assert isinstance(d.images, np.memmap)
    np.testing.assert_array_equal(d.images, np.load(path)["images"])
    extracted = list((cache / "mpi3d-extracted").glob("*.npy"))
    assert len(extracted) == 1
    stamp = extracted[0].stat().st_mtime_ns
    read_mpi3d_npz(path, cache_dir=cache)
    assert extracted[0].stat().st_mtime_ns == stamp  # reused, not rewritten


def test_a_damaged_or_outdated_extraction_is_redone(small_grids, tmp_path):
    path = _savez(tmp_path / "mpi3d_toy.npz", compressed=True, images=_images(N6))
    cache = tmp_path / "cache"
    read_mpi3d_npz(path, cache_dir=cache)
    (extracted,) = (cache / "mpi3d-extracted").glob("*.npy")
    extracted.write_bytes(extracted.read_bytes()[:200])  # truncated: np.load of it used to be a traceback
    np.testing.assert_array_equal(read_mpi3d_npz(path, cache_dir=cache).images, _images(N6))
    # Rewritten with other images, its mtime put back: the ctime still tells, and only the new extraction stays.
    st = path.stat()
    _savez(path, compressed=True, images=_images(N6)[::-1].copy())
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    np.testing.assert_array_equal(read_mpi3d_npz(path, cache_dir=cache).images, _images(N6)[::-1])
    assert len(list((cache / "mpi3d-extracted").iterdir())) == 1


def test_a_deflated_member_failing_its_crc_is_refused(small_grids, tmp_path):
    path = _savez(tmp_path / "mpi3d_toy.npz", compressed=True, images=_images(N6))
    raw = bytearray(path.read_bytes())
    central = raw.rindex(b"PK\x01\x02", 0, raw.rindex(b"images.npy"))  # the member's central-directory entry
    raw[central + 16:central + 20] = bytes(4)  # its CRC-32, the one zipfile checks the data against
    path.write_bytes(bytes(raw))
    with pytest.raises(UserError, match="extracting 'images' failed .*CRC"):
        read_mpi3d_npz(path, cache_dir=tmp_path / "cache")
    assert not list((tmp_path / "cache" / "mpi3d-extracted").iterdir())


# --- errors ---------------------------------------------------------------------------------------------


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(UserError, match="MPI3D file not found: .*nope.npz"):
        read_mpi3d_npz(tmp_path / "nope.npz")
    with pytest.raises(UserError, match=r"not found: .* \(it is a folder\)"):
        read_mpi3d_npz(tmp_path)


def test_missing_images_key_lists_the_keys_present(small_grids, tmp_path):
    path = _savez(tmp_path / "mpi3d_toy.npz", imgs=_images(N6), labels=np.zeros(N6))
    with pytest.raises(UserError, match=r"key 'images' is missing \(keys present: imgs, labels\)"):
        read_mpi3d_npz(path)


def test_wrong_dtype_and_shape(small_grids, tmp_path):
    with pytest.raises(UserError, match="'images' has dtype float32, expected uint8"):
        read_mpi3d_npz(_savez(tmp_path / "a.npz", images=_images(N6).astype(np.float32)))
    with pytest.raises(UserError, match=r"'images' has shape \(60, 64, 64\), expected \(N, 64, 64, 3\)"):
        read_mpi3d_npz(_savez(tmp_path / "b.npz", images=_images(N6)[..., 0]))
    with pytest.raises(UserError, match="image_size=32 was asked for"):
        load_mpi3d(_savez(tmp_path / "c.npz", images=_images(N6)), image_size=32)


def test_n_matching_no_variant_in_a_file(small_grids, tmp_path):
    with pytest.raises(UserError, match="7 images match no MPI3D variant"):
        read_mpi3d_npz(_savez(tmp_path / "mpi3d_toy.npz", images=_images(7)))


def test_truncated_files(small_grids, tmp_path):
    good = _savez(tmp_path / "good.npz", images=_images(N6)).read_bytes()
    cut = tmp_path / "mpi3d_toy.npz"
    cut.write_bytes(good[: len(good) // 2])  # the central directory (at the end) is gone
    with pytest.raises(UserError, match=r"cannot open as \.npz \(not a zip file, or truncated\)"):
        read_mpi3d_npz(cut)
    cut.write_bytes(b"not a zip at all")
    with pytest.raises(UserError, match="not a zip file"):
        read_mpi3d_npz(cut)


def test_member_shorter_than_its_header_says(small_grids, tmp_path):
    # A stored member whose .npy header claims more rows than the bytes that follow it.
    path = tmp_path / "mpi3d_toy.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf, zf.open("images.npy", "w") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "|u1", "fortran_order": False, "shape": (N6, 64, 64, 3)})
        f.write(_images(N6 // 2).tobytes())
    with pytest.raises(UserError, match="file truncated"):
        read_mpi3d_npz(path)


def test_bad_indices_extension(small_grids, tmp_path):
    path = _savez(tmp_path / "mpi3d_toy.npz", images=_images(3), indices=np.array([5, 2, 9]))
    with pytest.raises(UserError, match="'indices' must be strictly increasing"):
        read_mpi3d_npz(path)


# --- look-alike -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lookalike(tmp_path_factory) -> Path:
    return write_mpi3d_npz(tmp_path_factory.mktemp("mpi3d") / "mpi3d-toy-lookalike-v1.npz", subset=64, seed=3)


def test_written_subset_has_the_official_layout_plus_indices(lookalike):
    with np.load(lookalike) as z:
        assert sorted(z.keys()) == ["images", "indices"]
        assert z["images"].dtype == np.uint8 and z["images"].shape == (64, 64, 64, 3)
        indices = z["indices"]
    assert indices.dtype == np.int64 and np.all(np.diff(indices) > 0) and indices[-1] < 1_036_800
    with zipfile.ZipFile(lookalike) as zf:
        assert zf.getinfo("images.npy").compress_type == zipfile.ZIP_STORED
    d = read_mpi3d_npz(lookalike)
    assert d.name == "mpi3d_toy" and d.factor_sizes == [6, 6, 2, 3, 3, 40, 40]
    np.testing.assert_array_equal(np.ravel_multi_index(d.factors.T, d.factor_sizes), indices)
    # Rows are the renders of their own grid classes, in order.
    np.testing.assert_array_equal(d.images[:5], render_mpi3d(d.factors[:5]))
    assert not list(lookalike.parent.glob(".*.tmp"))


def test_renderer_follows_the_factors():
    base = np.array([3, 0, 1, 1, 0, 20, 0])
    sweep = np.repeat(base[None], 3, axis=0)
    sweep[:, 4] = [0, 1, 2]
    img = render_mpi3d(sweep).astype(float)
    # Corners are stage grey; the arc band at the image edge takes the background colour.
    np.testing.assert_allclose(img[:, 60, 2], np.repeat(STAGE_RGB[None], 3, 0), atol=6)
    np.testing.assert_allclose(img[:, 30, 1], BACKGROUND_RGB, atol=8)
    # Every other factor changes the picture.
    for k, other in enumerate([5, 1, 0, 2, 2, 39, 39]):
        changed = base.copy()
        changed[k] = other
        pair = render_mpi3d(np.stack([base, changed]))
        assert not np.array_equal(pair[0], pair[1]), FACTOR_NAMES[k]
    np.testing.assert_array_equal(render_mpi3d(base[None]), render_mpi3d(base[None]))


def test_load_through_the_public_api(small_grids, tmp_path, monkeypatch):
    path = _savez(tmp_path / "mpi3d_real.npz", images=_images(N6))
    d = data.load("mpi3d", str(path))
    assert d.name == "mpi3d_real" and len(d) == N6
    assert "mpi3d" in data.DATASETS
    monkeypatch.setenv("HOME", str(tmp_path))
    assert data.load("mpi3d", "~/mpi3d_real.npz").name == "mpi3d_real"


def test_lookalike_is_built_once_into_the_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(mpi3d, "LOOKALIKE_SUBSET", 20)
    cache = tmp_path / "cache"
    d = data.load("mpi3d", cache_dir=cache)
    file = cache / "mpi3d-toy-lookalike-v1.npz"
    assert file.is_file() and len(d) == 20 and d.name == "mpi3d_toy"
    stamp = file.stat().st_mtime_ns
    again = load_mpi3d(cache_dir=cache)
    assert file.stat().st_mtime_ns == stamp
    np.testing.assert_array_equal(again.images, d.images)
    with pytest.raises(UserError, match="look-alike is MPI3D-toy only"):
        load_mpi3d(cache_dir=cache, variant="real")
