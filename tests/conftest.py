"""Fixtures only (helpers live in helpers.py): a tiny Shapes3D-format file and a tiny run's overrides."""

import pytest
from helpers import TINY

from latentquant.data.shapes3d import write_shapes3d_h5


@pytest.fixture(scope="session")
def tiny_h5(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "3dshapes-tiny.h5"
    write_shapes3d_h5(path, image_size=32, subset=256, seed=0)
    return path


@pytest.fixture
def tiny_args(tiny_h5) -> list[str]:
    """Overrides for a tiny training run on `tiny_h5` (add run_dir= and train.steps=)."""
    return [*TINY, f"data.path={tiny_h5}"]
