"""`latentquant data make | check | where` through the command line."""

import subprocess
import sys

import h5py
import numpy as np
import pytest

from latentquant.data.catalog import CATALOG


def cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "latentquant.cli", "data", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=120)


@pytest.mark.slow
def test_make_then_check(tmp_path):
    out = tmp_path / "tiny.h5"
    made = cli("make", "shapes3d", "--out", str(out), "--subset", "120", "--image-size", "32", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    with h5py.File(out) as f:
        assert f["images"].shape == (120, 32, 32, 3) and f["labels"].dtype == np.float64
    checked = cli("check", str(out), cwd=tmp_path)
    assert checked.returncode == 0, checked.stderr
    assert "shapes3d, N = 120" in checked.stdout and "floor_hue 10" in checked.stdout
    assert "verification: ok" in checked.stdout and "subset" in checked.stdout
    again = cli("make", "shapes3d", "--out", str(out), cwd=tmp_path)
    assert again.returncode == 2 and "already exists" in again.stderr


def test_check_fails_with_exit_1_and_the_reason(tmp_path):
    bad = tmp_path / "3dshapes.h5"
    with h5py.File(bad, "w") as f:
        f["images"] = np.zeros((4, 64, 64, 3), np.uint8)
        f["labels"] = np.full((4, 6), 7.0)  # not on the factor grid
    proc = cli("check", str(bad), cwd=tmp_path)
    assert proc.returncode == 1 and "check failed" in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stderr.strip().count("\n") == 0
    missing = cli("check", str(tmp_path / "nope.h5"), cwd=tmp_path)
    assert missing.returncode == 1 and "no such file" in missing.stderr
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"not a dataset")
    proc = cli("check", str(junk), cwd=tmp_path)
    assert proc.returncode == 1 and "neither HDF5 nor .npz" in proc.stderr


@pytest.mark.parametrize("name", sorted(CATALOG))
def test_where_names_source_file_and_checksum(name, tmp_path):
    proc = cli("where", name, cwd=tmp_path)
    assert proc.returncode == 0
    info = CATALOG[name]
    assert info.repository in proc.stdout
    for f in info.files:
        assert f.name in proc.stdout and (f.sha256 or "unknown") in proc.stdout


def test_where_unknown_dataset(tmp_path):
    proc = cli("where", "imagenet", cwd=tmp_path)
    assert proc.returncode == 2 and "unknown dataset 'imagenet'" in proc.stderr


def test_single_resolution_datasets_downscale_on_load(tmp_path):
    from latentquant.data import load
    from latentquant.data.dsprites import write_dsprites_npz

    path = write_dsprites_npz(tmp_path / "dsprites.npz", subset=50)
    full = load("dsprites", path)
    half = load("dsprites", path, image_size=32)
    assert half.images.shape == (50, 32, 32, 1) and np.array_equal(half.factors, full.factors)
    block = full.images[3, :2, :2, 0].astype(float).mean()
    assert half.images[3, 0, 0, 0] == np.rint(block)
    assert abs(half.images.astype(float).mean() - full.images.astype(float).mean()) < 1.0
    with pytest.raises(Exception, match="must divide 64"):
        load("dsprites", path, image_size=48)


def test_check_of_a_truncated_hdf5_file_is_one_line(tmp_path):
    from latentquant.data.shapes3d import write_shapes3d_h5

    whole = write_shapes3d_h5(tmp_path / "3dshapes.h5", image_size=32, subset=20)
    cut = tmp_path / "cut.h5"
    cut.write_bytes(whole.read_bytes()[:4096])
    proc = cli("check", str(cut), cwd=tmp_path)
    assert proc.returncode in (1, 2) and "Traceback" not in proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and "truncated or corrupt" in proc.stderr


def _png_declaring(width: int, height: int) -> bytes:
    """A PNG signature and IHDR chunk (valid CRC) for an image of width x height: enough for a decoder to refuse."""
    import struct
    import zlib

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))


def test_a_png_declaring_forty_thousand_squared_pixels_is_one_line(tmp_path):
    from latentquant.data.nvlabs import _decode_chunk

    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_png_declaring(40_000, 40_000))
    images, error = _decode_chunk(([str(bomb)], 8, None))
    assert images is None and error.startswith(f"{bomb}: unreadable PNG") and "\n" not in error


@pytest.mark.parametrize("shape", [(4, 32, 16, 3), (1, 32, 32, 3)])
def test_check_refuses_what_training_would_refuse(shape, tmp_path):
    """Non-square images, or a single image: `data check` says so (exit 1) as `train` does (exit 2), in one line."""
    from latentquant.data.shapes3d import FACTOR_VALUES

    bad = tmp_path / "3dshapes.h5"
    with h5py.File(bad, "w") as f:
        f["images"] = np.zeros(shape, np.uint8)
        f["labels"] = np.tile([v[0] for v in FACTOR_VALUES], (shape[0], 1)).astype(np.float64)
    checked = cli("check", str(bad), cwd=tmp_path)
    trained = subprocess.run([sys.executable, "-m", "latentquant.cli", "train", f"data.path={bad}",
                              f"run_dir={tmp_path / 'run'}", "data.image_size=32"], capture_output=True, text=True,
                             cwd=tmp_path, timeout=120)
    for proc, code in ((checked, 1), (trained, 2)):
        assert proc.returncode == code and proc.stderr.strip().count("\n") == 0, proc.stderr
        assert ("square" if shape[2] != shape[1] else "at least 2") in proc.stderr
    assert not (tmp_path / "run").exists()


def run_main(*args: str, capsys) -> tuple[int, str, str]:
    """The CLI in this process (a subprocess costs a second of imports per call)."""
    from latentquant.cli import main

    code = main(["data", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_mpi3d_made_at_32_is_checked_and_loaded_at_32(tmp_path, capsys):
    from latentquant.data import load

    out = tmp_path / "mpi3d_toy.npz"
    code, _, err = run_main("make", "mpi3d", "--out", str(out), "--subset", "6", "--image-size", "32", capsys=capsys)
    assert code == 0, err
    code, stdout, err = run_main("check", str(out), capsys=capsys)
    assert code == 0, err
    assert "N = 6 images of 32x32x3" in stdout
    data = load("mpi3d", str(out), image_size=32)
    assert data.images.shape == (6, 32, 32, 3)
    assert load("mpi3d", str(out), image_size=16).images.shape == (6, 16, 16, 3)  # a divisor is area-averaged
    with pytest.raises(Exception, match="holds 32x32 images; image_size must divide 32"):
        load("mpi3d", str(out), image_size=64)


@pytest.mark.parametrize("name, size, needle", [
    ("dsprites", "32", "64x64; train with data.image_size=32"),
    ("falcor3d", "32", "128x128; train with data.image_size=32"),
    ("isaac3d", "4", "Isaac3D look-alikes are written as the official files are, 128x128"),
    ("mpi3d", "8", "between 16 and 256"),
])
def test_make_refuses_a_size_the_format_cannot_hold(name, size, needle, tmp_path, capsys):
    """`--image-size` used to be ignored for dSprites and the NVlabs folders: a 64x64 or 128x128 file, silently."""
    out = tmp_path / "out"
    code, _, err = run_main("make", name, "--out", str(out), "--subset", "2", "--image-size", size, capsys=capsys)
    assert code == 2 and needle in err and err.strip().count("\n") == 0, err
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_check_of_a_folder_whose_labels_name_is_no_file_says_so(tmp_path, capsys):
    """A labels name that exists but is not a file still tells the layout; the reader then names the problem."""
    (tmp_path / "Isaac3D_down128" / "labels.npy").mkdir(parents=True)
    code, _, err = run_main("check", str(tmp_path / "Isaac3D_down128"), capsys=capsys)
    assert code == 1 and "labels.npy: labels file is not a regular file" in err, err


def test_make_refuses_a_dangling_symlink_as_out(tmp_path, capsys):
    link = tmp_path / "out.h5"
    link.symlink_to(tmp_path / "elsewhere" / "x.h5")
    code, _, err = run_main("make", "shapes3d", "--out", str(link), "--subset", "2", capsys=capsys)
    assert code == 2 and "already exists" in err and link.is_symlink()


def test_dsprites_bad_labels_are_not_called_truncated(tmp_path, capsys):
    from latentquant.data.dsprites import write_dsprites_npz

    path = write_dsprites_npz(tmp_path / "good.npz", subset=4)
    arrays = dict(np.load(path))
    arrays["latents_values"] = arrays["latents_values"].astype(np.float64)
    arrays["latents_values"][2, 3] = np.nan
    np.savez(tmp_path / "nan.npz", **arrays)
    code, _, err = run_main("check", str(tmp_path / "nan.npz"), capsys=capsys)
    assert code == 1 and "has value nan at row 2" in err and "truncated" not in err, err
