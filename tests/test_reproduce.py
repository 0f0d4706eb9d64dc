"""`latentquant reproduce`: the paper's grid as one resumable sweep, tables at the end."""

import csv
import io

import pytest

from latentquant import runs
from latentquant.cli import main
from latentquant.errors import UserError
from latentquant.experiments.reproduce import PAPER_MODELS, plan, reproduce


def test_lookalike_grid_without_data():
    trials = plan({})
    assert len(trials) == len(PAPER_MODELS) * 2
    assert len({t.name for t in trials}) == len(trials)
    first = trials[0]
    assert first.name == "shapes3d-ae-seed1"
    assert "preset=cpu" in first.overrides and "eval.suite=true" in first.overrides
    assert not any(o.startswith("data.path=") for t in trials for o in t.overrides)


def test_paper_grid_for_the_datasets_given(tmp_path):
    shapes, mpi = tmp_path / "3dshapes.h5", tmp_path / "real3d_complicated_shapes_ordered.npz"
    shapes.write_bytes(b""), mpi.write_bytes(b"")  # only existence is checked up front; each trial loads its file
    trials = plan({"shapes3d": shapes, "mpi3d": mpi})
    assert len(trials) == len(PAPER_MODELS) * 2 * 7
    mpi_trials = [t for t in trials if t.name.startswith("mpi3d-")]
    assert all("preset=paper" in t.overrides and f"data.path={mpi}" in t.overrides for t in mpi_trials)
    assert {t.name for t in mpi_trials} >= {"mpi3d-qlinfowgan_gp-seed7", "mpi3d-qlae-seed1"}


def test_bad_plans_name_the_problem(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        plan({"falcor3d": tmp_path / "missing"})
    with pytest.raises(UserError, match="unknown dataset"):
        plan({"celeba": tmp_path})
    with pytest.raises(UserError, match="unknown model"):
        plan({}, models=("qlae", "nope"))
    assert main(["reproduce", "--dry-run", "--isaac3d", str(tmp_path / "missing")]) == 2


@pytest.mark.slow
def test_tiny_reproduce_trains_writes_tables_and_continues(tiny_args, tmp_path, capsys):
    extra = (*tiny_args, "train.steps=4", "train.eval_every=100", "eval.figures=false", "eval.factorvae_votes=64")
    trials = plan({}, seeds=2, models=("qlae", "ae"), extra=extra)
    out = tmp_path / "reproduce"
    states = reproduce(out, trials, workers=2, threads=1, echo=lambda line: None)
    assert states == {t.name: "finished" for t in trials}
    assert all(runs.run_state(out / t.name) == "finished" for t in trials)
    markdown = (out / "tables.md").read_text()
    assert "| QLAE (ours) |" in markdown and "| AE |" in markdown and "| D |" in markdown
    rows = list(csv.DictReader(io.StringIO((out / "tables.csv").read_text())))
    assert {r["model"] for r in rows} == {"qlae", "ae"} and {r["n"] for r in rows} == {"2"}
    assert r"\textbf" in (out / "tables.tex").read_text()
    # the same command again finds every trial finished and trains nothing
    before = {t.name: (out / t.name / "metrics.jsonl").read_text() for t in trials}
    assert reproduce(out, trials, workers=2, threads=1, echo=lambda line: None) == states
    assert before == {t.name: (out / t.name / "metrics.jsonl").read_text() for t in trials}
