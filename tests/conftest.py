"""Shared fixtures: a tiny Shapes3D-format file and the overrides that make a run take seconds."""

import pytest

from latentquant.data.shapes3d import write_shapes3d_h5

# A 3-conv encoder on 32x32 images, one thread: a run of a few steps takes a second or two.
TINY = ["model.widths=[8,16,16]", "model.blocks_per_stage=1", "model.dense=[32]", "data.image_size=32",
        "train.batch_size=16", "data.num_eval=64", "eval.batch_size=32", "progress=false", "train.threads=1",
        "train.log_every=2"]


@pytest.fixture(scope="session")
def tiny_h5(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "3dshapes-tiny.h5"
    write_shapes3d_h5(path, image_size=32, subset=256, seed=0)
    return path


@pytest.fixture
def tiny_args(tiny_h5) -> list[str]:
    """Overrides for a tiny training run on `tiny_h5` (add run_dir= and train.steps=)."""
    return [*TINY, f"data.path={tiny_h5}"]
