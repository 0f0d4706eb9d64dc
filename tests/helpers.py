"""Shared test helpers: tiny images and datasets, tiny model parts, the overrides of a seconds-long run."""

from __future__ import annotations

import numpy as np
import torch

from latentquant.data import GroundTruthData
from latentquant.models import ModelParts
from latentquant.modules.networks import repeating_stack

# A 3-conv encoder on 32x32 images, one thread: a run of a few steps takes a second or two.
TINY = ["model.widths=[8,16,16]", "model.blocks_per_stage=1", "model.dense=[32]", "data.image_size=32",
        "train.batch_size=16", "data.num_eval=64", "eval.batch_size=32", "progress=false", "train.threads=1",
        "train.log_every=2", "train.compile=false"]

# Parts of a two-stage network on 16x16 images for model-level tests (no data file needed).
TINY_PARTS = ModelParts(in_channels=3, image_size=16, stack=repeating_stack((8, 16), per_stage=1), dense=(32,),
                        dataset_size=1000)


def tiny_images(n: int = 32, seed: int = 0) -> torch.Tensor:
    """Blobs at random positions, (n, 3, 16, 16) in [0, 1]: something an autoencoder learns in a few steps."""
    g = torch.Generator().manual_seed(seed)
    pos = torch.randint(2, 14, (n, 2), generator=g)
    yy, xx = torch.meshgrid(torch.arange(16), torch.arange(16), indexing="ij")
    d = (yy[None] - pos[:, 0, None, None]) ** 2 + (xx[None] - pos[:, 1, None, None]) ** 2
    blob = torch.exp(-d / 6.0)
    return torch.stack([blob, 1 - blob, 0.5 * blob], dim=1)


def tiny_data(n: int = 40, seed: int = 0) -> GroundTruthData:
    """`tiny_images` as a uint8 dataset with two random 3-valued factors."""
    images = (tiny_images(n, seed).permute(0, 2, 3, 1).numpy() * 255).astype(np.uint8)
    factors = np.random.default_rng(seed).integers(0, 3, size=(n, 2))
    return GroundTruthData("tiny", images, factors, ["a", "b"], [3, 3], [np.arange(3.0), np.arange(3.0)])


def factorial_sources(sizes: tuple[int, ...], repeats: int) -> np.ndarray:
    """Every combination of source values, each repeated: sources are exactly independent of each other."""
    axes = np.meshgrid(*[np.arange(s) for s in sizes], indexing="ij")
    grid = np.stack([a.ravel() for a in axes], axis=1)
    return np.repeat(grid, repeats, axis=0)


def make_file_creation_fail(monkeypatch, code: int) -> None:
    """Every os.open that would create a file fails with errno `code` (EROFS: a read-only mount, ENOSPC: full)."""
    import os

    real_open = os.open

    def refuse(path, flags, *args, **kwargs):
        if flags & os.O_CREAT:
            raise OSError(code, os.strerror(code), str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", refuse)


def timeless_log(run_dir) -> list[dict]:
    """Every record of a run's metrics.jsonl, parsed strictly, without what depends on timing or sessions: the
    throughput and the per-session time and environment records (a resumed run has one of each per session)."""
    import json
    from pathlib import Path

    records = [json.loads(line) for line in (Path(run_dir) / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k != "images_per_s"} for r in records
            if r["split"] not in ("time", "environment")]


def factorial_data(sizes: tuple[int, ...]) -> GroundTruthData:
    """Every combination of factor indices once, as a dataset whose 1x1 'images' store the indices in their
    channels: an encoder reads the factors back with `images.reshape(len(images), -1)`."""
    grid = factorial_sources(sizes, 1)
    names = [chr(ord("a") + k) for k in range(len(sizes))]
    return GroundTruthData("toy", grid.astype(np.uint8)[:, None, None, :], grid, names, list(sizes),
                           [np.arange(s) for s in sizes])


def train_tiny_run(tiny_h5, run_dir, *extra: str):
    """A finished 4-step run on `tiny_h5` (no figures: its evaluation is what reading a run needs), in `run_dir`."""
    from latentquant import config
    from latentquant.train import train

    cfg = config.resolve([*TINY, f"data.path={tiny_h5}", f"run_dir={run_dir}", "train.steps=4", "train.eval_every=100",
                          "eval.figures=false", *extra])
    train(cfg)
    return run_dir
