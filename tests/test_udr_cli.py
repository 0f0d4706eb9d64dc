"""`latentquant udr <run> <run> ...`: scores that match the library on the runs' encodings, JSON output, and
one-line errors with exit code 2."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers import TINY

from latentquant import config
from latentquant import train as train_mod
from latentquant.cli import main
from latentquant.evaluate import encode_images, eval_indices, load_run_model
from latentquant.metrics import udr


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory, tiny_h5) -> list[Path]:
    """Two 2-step runs on the same file with different seeds, trained once per module."""
    root = tmp_path_factory.mktemp("udr")
    runs = []
    for seed in (1, 2):
        run = root / f"run{seed}"
        train_mod.train(config.resolve([*TINY, f"data.path={tiny_h5}", f"run_dir={run}", "train.steps=2",
                                        f"seed={seed}", "eval.figures=false"]))
        runs.append(run)
    return runs


def test_udr_prints_each_run_and_matches_the_library(two_runs, tmp_path, capsys) -> None:
    out = tmp_path / "udr.json"
    assert main(["udr", *map(str, two_runs), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert all(str(run) in printed for run in two_runs) and "UDR (spearman) on 64 evaluation images" in printed
    report = json.loads(out.read_text())
    assert [r["run_dir"] for r in report["runs"]] == [str(run) for run in two_runs]
    assert report["n_images"] == 64 and report["pairwise"][0][0] is None

    latents = []
    for run in two_runs:
        data, model, _ = load_run_model(run)
        cfg = config.load(run / "config.yaml")
        indices = eval_indices(len(data), cfg.data.num_eval, cfg.data.seed)
        latents.append(encode_images(model, data.images, indices, batch_size=32)[0])
    expected = udr(latents)["model_scores"]
    np.testing.assert_allclose([r["udr"] for r in report["runs"]], expected, rtol=1e-6)
    assert all(0.0 <= r["udr"] <= 1.0 for r in report["runs"])


def test_runs_on_different_datasets_are_refused(two_runs, tmp_path, capsys) -> None:
    other = tmp_path / "other"
    shutil.copytree(two_runs[1], other)
    path = other / "config.yaml"
    path.write_text(path.read_text().replace("image_size: 32", "image_size: 64"))
    assert main(["udr", str(two_runs[0]), str(other)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "same dataset" in err and "64px" in err


@pytest.mark.parametrize(
    ("make_args", "message"),
    [
        (lambda runs, tmp: [str(runs[0])], "at least 2 run directories"),
        (lambda runs, tmp: [str(runs[0]), str(tmp / "missing")], "no run directory"),
        (lambda runs, tmp: [str(runs[0]), str(runs[1]), "--num-eval", "1"], "--num-eval"),
    ],
)
def test_bad_arguments_give_one_line_and_exit_2(two_runs, tmp_path, capsys, make_args, message: str) -> None:
    assert main(["udr", *make_args(two_runs, tmp_path)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and message in err
