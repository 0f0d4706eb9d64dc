"""Falcor3D and Isaac3D: official folder layout, the resize cache, the labels/grid rules and the reader's errors."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from latentquant import data
from latentquant.data import nvlabs
from latentquant.data.lookalike.nvlabs import render_falcor3d, render_isaac3d
from latentquant.data.nvlabs import (
    FALCOR3D,
    ISAAC3D,
    load_falcor3d,
    load_isaac3d,
    read_nvlabs_folder,
    write_falcor3d_folder,
    write_isaac3d_folder,
)
from latentquant.errors import UserError

N = 24
SIZE = 32


@pytest.fixture(scope="module")
def falcor_root(tmp_path_factory) -> Path:
    return write_falcor3d_folder(tmp_path_factory.mktemp("falcor") / "Falcor3D_down128", subset=N, seed=0)


@pytest.fixture(scope="module")
def isaac_root(tmp_path_factory) -> Path:
    return write_isaac3d_folder(tmp_path_factory.mktemp("isaac") / "Isaac3D_down128", subset=N, seed=1)


def _copy(root: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(root, tmp_path / "copy"))


def _labels_for(indices, spec=FALCOR3D) -> np.ndarray:
    classes = np.stack(np.unravel_index(np.asarray(indices), spec.factor_sizes), axis=1)
    return classes / (np.asarray(spec.factor_sizes) - 1.0)


def _write_tiny(root: Path, indices, labels: np.ndarray | None, spec=FALCOR3D) -> Path:
    (root / "images").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in indices:
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(root / "images" / f"{i:06d}.png")
    if labels is not None:
        with open(root / spec.labels_file, "wb") as f:
            np.save(f, labels)
    return root


# --- factor grids ---------------------------------------------------------------------------------------


def test_factor_grids_match_the_official_index_formulas():
    assert FALCOR3D.num_images == 233_280 and ISAAC3D.num_images == 737_280
    for spec, strides in ((FALCOR3D, [46656, 7776, 1296, 216, 36, 6, 1]),
                          (ISAAC3D, [245760, 30720, 6144, 1536, 384, 96, 16, 4, 1])):
        k = len(spec.factor_sizes)
        got = [np.ravel_multi_index(tuple(np.eye(k, dtype=int)[j]), spec.factor_sizes) for j in range(k)]
        assert got == strides, spec.name
    assert ISAAC3D.factor_names[:3] == ("object_shape", "robot_x", "robot_y")


# --- layout and round trip ------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["falcor", "isaac"])
def test_written_folder_has_the_official_layout(which, falcor_root, isaac_root):
    root, spec = (falcor_root, FALCOR3D) if which == "falcor" else (isaac_root, ISAAC3D)
    pngs = sorted(p.name for p in (root / "images").iterdir())
    labels = np.load(root / spec.labels_file)
    assert labels.shape == (N, len(spec.factor_sizes)) and labels.dtype == np.float64
    classes = np.rint(labels * (np.asarray(spec.factor_sizes) - 1)).astype(int)
    indices = np.ravel_multi_index(tuple(classes.T), spec.factor_sizes)
    assert pngs == [f"{i:06d}.png" for i in indices]  # names = row-major index of each label row
    assert np.all(np.diff(indices) > 0) and indices[-1] > N  # sorted, a real random subset
    with Image.open(root / "images" / pngs[0]) as img:
        assert img.mode == "RGB" and img.size == (128, 128)
    assert sorted(p.name for p in root.parent.iterdir()) == [root.name]  # no temp folder left behind


def test_round_trip_and_resize_cache(falcor_root, tmp_path):
    first = read_nvlabs_folder(falcor_root, FALCOR3D, image_size=SIZE, cache_dir=tmp_path)
    cached = list(tmp_path.glob("*.npy"))
    assert len(cached) == 1 and f"n{N}-{SIZE}px" in cached[0].name
    assert first.images.shape == (N, SIZE, SIZE, 3) and first.images.dtype == np.uint8
    labels = np.load(falcor_root / "train-rec.labels")
    np.testing.assert_allclose(first.values(), labels, atol=1e-12)
    # The cached pixels are the bicubic antialiased resize of each PNG.
    index = np.ravel_multi_index(tuple(first.factors[5]), FALCOR3D.factor_sizes)
    with Image.open(falcor_root / "images" / f"{index:06d}.png") as img:
        expected = np.asarray(img.resize((SIZE, SIZE), Image.BICUBIC, reducing_gap=None))
    np.testing.assert_array_equal(first.images[5], expected)
    # ...and it resembles the renderer's own output at the small size.
    diff = np.abs(first.images[5].astype(int) - render_falcor3d(first.factors[5:6], SIZE)[0].astype(int))
    assert diff.mean() < 12
    stamp = cached[0].stat().st_mtime_ns
    again = read_nvlabs_folder(falcor_root, FALCOR3D, image_size=SIZE, cache_dir=tmp_path)
    assert isinstance(again.images, np.memmap) and cached[0].stat().st_mtime_ns == stamp
    np.testing.assert_array_equal(np.asarray(again.images), np.asarray(first.images))
    np.testing.assert_array_equal(again.factors, first.factors)


def test_native_size_needs_no_resize(isaac_root, tmp_path):
    got = read_nvlabs_folder(isaac_root, ISAAC3D, image_size=128, cache_dir=tmp_path)
    np.testing.assert_array_equal(got.images[:3], render_isaac3d(got.factors[:3], 128))


def test_cache_is_keyed_by_folder_and_size(falcor_root, tmp_path):
    read_nvlabs_folder(falcor_root, FALCOR3D, image_size=SIZE, cache_dir=tmp_path)
    read_nvlabs_folder(falcor_root, FALCOR3D, image_size=16, cache_dir=tmp_path)
    other = shutil.copytree(falcor_root, tmp_path / "other")
    read_nvlabs_folder(other, FALCOR3D, image_size=SIZE, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("*.npy"))) == 3


def test_pool_path_gives_the_same_pixels(falcor_root, tmp_path, monkeypatch):
    serial = read_nvlabs_folder(falcor_root, FALCOR3D, image_size=SIZE, cache_dir=tmp_path / "a")
    monkeypatch.setattr(nvlabs, "_POOL_MIN", 1)
    monkeypatch.setattr(nvlabs, "_CHUNK", 5)  # several tasks, so order across workers matters
    pooled = read_nvlabs_folder(falcor_root, FALCOR3D, image_size=SIZE, cache_dir=tmp_path / "b")
    np.testing.assert_array_equal(np.asarray(pooled.images), np.asarray(serial.images))


def test_public_load_api(falcor_root, isaac_root, tmp_path):
    f = data.load("falcor3d", str(falcor_root), image_size=SIZE, cache_dir=tmp_path)
    i = data.load("isaac3d", isaac_root, image_size=SIZE, cache_dir=tmp_path)
    assert (f.name, len(f), f.num_factors) == ("falcor3d", N, 7)
    assert (i.name, len(i), i.num_factors) == ("isaac3d", N, 9)
    assert i.factor_sizes == [3, 8, 5, 4, 4, 4, 6, 4, 4]
    np.testing.assert_allclose(i.factor_values[1], np.linspace(0, 1, 8))


def test_lookalike_without_path_is_written_once(tmp_path, monkeypatch):
    monkeypatch.setattr(nvlabs, "LOOKALIKE_SUBSET", 10)
    got = load_isaac3d(image_size=SIZE, cache_dir=tmp_path, subset=10)
    assert len(got) == 10 and got.image_shape == (SIZE, SIZE, 3)
    folder = tmp_path / "isaac3d-lookalike-n10-v1"
    assert (folder / "labels.npy").is_file() and len(list((folder / "images").iterdir())) == 10
    stamp = folder.stat().st_mtime_ns
    np.testing.assert_array_equal(load_isaac3d(image_size=SIZE, cache_dir=tmp_path, subset=10).factors, got.factors)
    assert folder.stat().st_mtime_ns == stamp


# --- the cache follows the sources ----------------------------------------------------------------------


def _fresh(root: Path, tmp_path: Path, name: str):
    """A decode that no earlier cache can influence."""
    return read_nvlabs_folder(root, FALCOR3D, image_size=16, cache_dir=tmp_path / name)


def test_reordered_label_rows_move_their_images_with_them(falcor_root, tmp_path):
    root = _copy(falcor_root, tmp_path)
    before = read_nvlabs_folder(root, FALCOR3D, image_size=16, cache_dir=tmp_path / "cache")
    labels = np.load(root / "train-rec.labels")
    order = np.random.default_rng(3).permutation(N)
    with open(root / "train-rec.labels", "wb") as f:  # same size, and the mtime may well be the same tick
        np.save(f, labels[order])
    after = read_nvlabs_folder(root, FALCOR3D, image_size=16, cache_dir=tmp_path / "cache")
    np.testing.assert_array_equal(after.factors, before.factors[order])
    np.testing.assert_array_equal(np.asarray(after.images), np.asarray(before.images)[order])
    np.testing.assert_array_equal(np.asarray(after.images), np.asarray(_fresh(root, tmp_path, "fresh").images))
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 1  # the stale cache is gone, not left to pile up


def test_a_png_corrupted_after_a_load_is_named_by_load_and_check(falcor_root, tmp_path, monkeypatch, capsys):
    from latentquant.cli import main

    root = _copy(falcor_root, tmp_path)
    monkeypatch.setenv("LATENTQUANT_CACHE", str(tmp_path / "cache"))
    assert main(["data", "check", str(root)]) == 0
    assert "every PNG decoded" in capsys.readouterr().out
    victim = sorted((root / "images").iterdir())[4]
    st = victim.stat()
    # Same size and the old mtime put back (as `touch -r` or `rsync -t` would): only the ctime tells.
    victim.write_bytes(b"\0" * st.st_size)
    os.utime(victim, ns=(st.st_atime_ns, st.st_mtime_ns))
    capsys.readouterr()
    assert main(["data", "check", str(root)]) == 1
    failure = [line for line in capsys.readouterr().err.splitlines() if "check failed" in line]  # not progress
    assert len(failure) == 1 and f"{victim}: unreadable PNG" in failure[0], failure
    with pytest.raises(UserError, match=f"{victim.name}: unreadable PNG"):
        data.load("falcor3d", str(root), image_size=64)


def test_a_read_only_cache_folder_is_one_line_and_a_matching_cache_still_reads(falcor_root, tmp_path, monkeypatch):
    read_nvlabs_folder(falcor_root, FALCOR3D, image_size=16, cache_dir=tmp_path / "cache")

    def denied(path):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(nvlabs, "atomic_output", denied)  # chmod would not stop the root user the tests may run as
    assert len(read_nvlabs_folder(falcor_root, FALCOR3D, image_size=16, cache_dir=tmp_path / "cache")) == N
    with pytest.raises(UserError, match="cannot write the resized-image cache .*Permission denied.*LATENTQUANT_CACHE"):
        read_nvlabs_folder(falcor_root, FALCOR3D, image_size=8, cache_dir=tmp_path / "cache")


def test_touching_a_png_keeps_the_data_right(falcor_root, tmp_path):
    root = _copy(falcor_root, tmp_path)
    before = np.array(read_nvlabs_folder(root, FALCOR3D, image_size=16, cache_dir=tmp_path / "cache").images)
    os.utime(sorted((root / "images").iterdir())[0])  # content unchanged
    after = read_nvlabs_folder(root, FALCOR3D, image_size=16, cache_dir=tmp_path / "cache")
    np.testing.assert_array_equal(np.asarray(after.images), before)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "pad", "wrong shape"])
def test_a_damaged_cache_is_rebuilt_not_used(damage, falcor_root, tmp_path):
    # A copy: the memory map would fault (SIGBUS) once its file is truncated under it.
    want = np.array(read_nvlabs_folder(falcor_root, FALCOR3D, image_size=16, cache_dir=tmp_path / "cache").images)
    (file,) = (tmp_path / "cache").glob("*.npy")
    whole = file.read_bytes()
    if damage == "truncate":
        file.write_bytes(whole[: len(whole) // 2])
    elif damage == "garbage":
        file.write_bytes(bytes(len(whole)))
    elif damage == "pad":
        file.write_bytes(whole + bytes(16 * 16 * 3))
    else:  # a valid .npy of other images under the cache's name
        with open(file, "wb") as f:
            np.save(f, np.zeros((N - 1, 16, 16, 3), np.uint8))
    got = read_nvlabs_folder(falcor_root, FALCOR3D, image_size=16, cache_dir=tmp_path / "cache")
    np.testing.assert_array_equal(np.asarray(got.images), want)
    assert file.read_bytes() == whole


def test_an_unfinished_cache_is_never_left_or_read(tmp_path, monkeypatch):
    root = _write_tiny(tmp_path / "r", [0, 1, 2], _labels_for([0, 1, 2]))

    def die(paths, size, native, target, what):
        target[:1] = 7  # part written, then the decoder fails
        raise UserError("decoder died")

    monkeypatch.setattr(nvlabs, "_decode_all", die)
    with pytest.raises(UserError, match="decoder died"):
        read_nvlabs_folder(root, FALCOR3D, image_size=16, cache_dir=tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []
    monkeypatch.undo()
    got = read_nvlabs_folder(root, FALCOR3D, image_size=16, cache_dir=tmp_path / "cache")
    with Image.open(root / "images" / "000000.png") as img:
        np.testing.assert_array_equal(got.images[0], np.asarray(img))


# --- labels <-> grid rules ------------------------------------------------------------------------------


def test_label_rows_in_any_order_map_to_their_own_pngs(tmp_path):
    indices = [7, 3, 200_000]
    root = _write_tiny(tmp_path / "r", indices, _labels_for(indices))
    got = read_nvlabs_folder(root, FALCOR3D, image_size=16, cache_dir=tmp_path / "c")
    for row, i in enumerate(indices):
        with Image.open(root / "images" / f"{i:06d}.png") as img:
            np.testing.assert_array_equal(got.images[row], np.asarray(img))
    np.testing.assert_array_equal(np.ravel_multi_index(tuple(got.factors.T), FALCOR3D.factor_sizes), indices)


def test_missing_labels_derive_factors_from_names_with_a_warning(tmp_path):
    root = _write_tiny(tmp_path / "r", [0, 1, 46656], None)
    with pytest.warns(UserWarning, match="no labels file"):
        got = read_nvlabs_folder(root, FALCOR3D, image_size=16, cache_dir=tmp_path / "c")
    np.testing.assert_array_equal(got.factors, [[0] * 7, [0] * 6 + [1], [1] + [0] * 6])


def test_either_labels_file_name_is_accepted(tmp_path):
    root = _write_tiny(tmp_path / "r", [0, 5], None)
    with open(root / "labels.npy", "wb") as f:  # Isaac3D's name in a Falcor3D folder
        np.save(f, _labels_for([0, 5]))
    assert len(read_nvlabs_folder(root, FALCOR3D, image_size=16, cache_dir=tmp_path / "c")) == 2


# --- errors ----------------------------------------------------------------------------------------------


def _raises(root: Path, match: str, tmp_path: Path, spec=FALCOR3D) -> None:
    with pytest.raises(UserError, match=match):
        read_nvlabs_folder(root, spec, image_size=16, cache_dir=tmp_path / "cache")


def test_missing_folder(tmp_path):
    _raises(tmp_path / "nope", "folder not found", tmp_path)
    (tmp_path / "file").write_text("x")
    _raises(tmp_path / "file", "is a file", tmp_path)


def test_no_labels_and_no_pngs(tmp_path):
    (tmp_path / "r" / "images").mkdir(parents=True)
    _raises(tmp_path / "r", "no labels file .* and no PNGs", tmp_path)


def test_missing_png_names_the_first_missing_file(tmp_path):
    root = _write_tiny(tmp_path / "r", [0, 2], _labels_for([0, 1, 2, 3]))
    _raises(root, r"000001\.png: missing PNG \(2 of the 4", tmp_path)


def test_extra_png_without_a_label_row(tmp_path):
    root = _write_tiny(tmp_path / "r", [0, 1, 9], _labels_for([0, 1]))
    _raises(root, r"3 PNGs but 2 label rows.*000009\.png", tmp_path)


def test_unreadable_png(tmp_path):
    root = _write_tiny(tmp_path / "r", [0, 1], _labels_for([0, 1]))
    (root / "images" / "000001.png").write_bytes(b"not a png")
    _raises(root, r"000001\.png: unreadable PNG", tmp_path)
    assert not list((tmp_path / "cache").glob("*.npy"))  # no half-written cache


def test_png_of_a_different_size(tmp_path):
    root = _write_tiny(tmp_path / "r", [0, 1], _labels_for([0, 1]))
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(root / "images" / "000001.png")
    _raises(root, r"000001\.png: is 8x8, but the first PNG is 16x16", tmp_path)


@pytest.mark.parametrize("labels", [np.zeros((3, 9)), np.zeros(7), np.zeros((0, 7))])
def test_wrong_label_shape(tmp_path, labels):
    root = _write_tiny(tmp_path / "r", [0], labels)
    _raises(root, r"labels have shape .* expected \(N, 7\)", tmp_path)


def test_unreadable_labels_and_integer_labels(tmp_path):
    root = _write_tiny(tmp_path / "r", [0], None)
    (root / "train-rec.labels").write_bytes(b"garbage")
    _raises(root, "cannot read the labels", tmp_path)
    with open(root / "train-rec.labels", "wb") as f:
        np.save(f, np.zeros((1, 7), np.int64))
    _raises(root, "dtype int64", tmp_path)


@pytest.mark.parametrize("value, k", [(0.1, 1), (1.2, 0), (-0.2, 6), (np.nan, 3)])
def test_off_grid_labels(tmp_path, value, k):
    labels = _labels_for([0, 1])
    labels[1, k] = value
    root = _write_tiny(tmp_path / "r", [0, 1], labels)
    _raises(root, f"factor '{FALCOR3D.factor_names[k]}' .* at row 1.*off-grid", tmp_path)


def test_duplicate_label_rows(tmp_path):
    root = _write_tiny(tmp_path / "r", [4], _labels_for([4, 4]))
    _raises(root, "row 1 repeats", tmp_path)


def test_png_index_beyond_the_grid_without_labels(tmp_path):
    root = _write_tiny(tmp_path / "r", [ISAAC3D.num_images], None, spec=ISAAC3D)
    _raises(root, "737280.png: index beyond the Isaac3D grid", tmp_path, spec=ISAAC3D)


def test_bad_image_size_and_existing_target(falcor_root, tmp_path):
    with pytest.raises(UserError, match="image_size"):
        load_falcor3d(falcor_root, image_size=4, cache_dir=tmp_path)
    with pytest.raises(UserError, match="already exists"):
        write_falcor3d_folder(falcor_root, subset=2)
    with pytest.raises(UserError, match="subset"):
        write_falcor3d_folder(tmp_path / "x", subset=0)


def test_unwritable_cache(falcor_root, tmp_path):
    blocker = tmp_path / "cache"
    blocker.write_text("a file where the cache folder should be")
    with pytest.raises(UserError, match="cannot write the resized-image cache"):
        read_nvlabs_folder(falcor_root, FALCOR3D, image_size=SIZE, cache_dir=blocker)


def test_symlinked_pngs_and_labels_read_as_their_targets(tmp_path):
    real = _write_tiny(tmp_path / "real", [0, 1, 2], _labels_for([0, 1, 2]))
    linked = tmp_path / "linked"
    (linked / "images").mkdir(parents=True)
    for png in (real / "images").iterdir():
        (linked / "images" / png.name).symlink_to(png)
    (linked / "train-rec.labels").symlink_to(real / "train-rec.labels")
    got = read_nvlabs_folder(linked, FALCOR3D, image_size=16, cache_dir=tmp_path / "c")
    np.testing.assert_array_equal(np.asarray(got.images), np.asarray(_fresh(real, tmp_path, "fresh").images))
    # Re-pointing one link at another image (same size, same mtime) is a different source: not the cache.
    (linked / "images" / "000000.png").unlink()
    (linked / "images" / "000000.png").symlink_to(real / "images" / "000002.png")
    again = read_nvlabs_folder(linked, FALCOR3D, image_size=16, cache_dir=tmp_path / "c")
    np.testing.assert_array_equal(again.images[0], got.images[2])


@pytest.mark.parametrize("how, match", [
    ("dangling png", r"000001\.png: cannot stat the PNG"),
    ("png is a folder", r"000001\.png: not a regular file"),  # a FIFO takes the same path, and would block a decoder
    ("labels is a folder", r"train-rec\.labels: labels file is not a regular file"),
    ("dangling labels", r"train-rec\.labels: labels file is a symlink to nothing"),
    ("images is a file", r"images: not a folder"),
])
def test_hostile_folder_entries_are_named(how, match, tmp_path):
    root = _write_tiny(tmp_path / "r", [0, 1], _labels_for([0, 1]))
    png, labels = root / "images" / "000001.png", root / "train-rec.labels"
    if how == "dangling png":
        png.unlink()
        png.symlink_to(tmp_path / "nowhere.png")
    elif how == "png is a folder":
        png.unlink()
        png.mkdir()
    elif how == "labels is a folder":
        labels.unlink()
        labels.mkdir()
    elif how == "dangling labels":
        labels.unlink()
        labels.symlink_to(tmp_path / "nowhere.labels")
    else:
        shutil.rmtree(root / "images")
        (root / "images").write_text("")
    _raises(root, match, tmp_path)  # not a fallback to factors from the PNG names, not a hang, not a traceback
    assert not (tmp_path / "cache").exists()  # refused before anything is written


# --- renderers ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("spec, render", [(FALCOR3D, render_falcor3d), (ISAAC3D, render_isaac3d)])
def test_every_factor_visibly_changes_the_image(spec, render):
    base = np.array([m // 2 for m in spec.factor_sizes])
    for k, m in enumerate(spec.factor_sizes):
        classes = np.repeat(base[None], m, axis=0)
        classes[:, k] = np.arange(m)
        images = render(classes, 64).astype(int)
        steps = np.abs(np.diff(images, axis=0)).max(axis=-1)
        # every step of every factor changes at least a few pixels clearly
        assert ((steps > 20).sum(axis=(1, 2)) >= 3).all(), spec.factor_names[k]
    np.testing.assert_array_equal(render(base[None], 64), render(base[None], 64))


def test_renderer_rejects_bad_classes():
    with pytest.raises(UserError, match="Falcor3D classes"):
        render_falcor3d(np.zeros((2, 6), int))
    with pytest.raises(UserError, match="Isaac3D classes"):
        render_isaac3d(np.full((1, 9), 8))
