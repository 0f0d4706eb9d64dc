"""Fixtures only (helpers live in helpers.py): a tiny Shapes3D-format file and a tiny run's overrides."""

import os

# Set before torch and numpy start their thread pools; the CLI subprocesses the tests start inherit it.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402
import torch  # noqa: E402
from helpers import TINY  # noqa: E402

# One thread per test process: the suite runs two processes on two cores (pytest -n 2), and tiny models gain
# nothing from more; every run the tests start says train.threads=1 as well.
torch.set_num_threads(1)

from latentquant.data.shapes3d import write_shapes3d_h5  # noqa: E402


@pytest.fixture(scope="session")
def tiny_h5(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "3dshapes-tiny.h5"
    write_shapes3d_h5(path, image_size=32, subset=256, seed=0)
    return path


@pytest.fixture
def tiny_args(tiny_h5) -> list[str]:
    """Overrides for a tiny training run on `tiny_h5` (add run_dir= and train.steps=)."""
    return [*TINY, f"data.path={tiny_h5}"]
