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
