"""`latentquant table`: intervals, bold rule, aggregate, grouping and the three output formats, on synthetic runs."""

from __future__ import annotations

import csv
import io
import json
import math
import shutil
from pathlib import Path

import pytest

from latentquant import config
from latentquant.cli import main
from latentquant.errors import UserError
from latentquant.experiments import tables
from latentquant.experiments.tables import Stat

T2 = 4.302653  # t_{0.975, 2}: three runs
T6 = 2.446912  # t_{0.975, 6}: the reference's 7 seeds
STEPS = 10


def make_run(root: Path, model: str, data: str, seed: int, infom: float | None, dci: float | None = None,
             extra: tuple[str, ...] = ()) -> Path:
    """A run directory as `latentquant train` leaves it; infom=None: not evaluated at its last step yet."""
    run = root / f"{model}-{data}-seed{seed}-{len(extra)}"
    run.mkdir(parents=True)
    cfg = config.resolve([f"model={model}", f"data={data}", f"seed={seed}", f"train.steps={STEPS}", f"run_dir={run}",
                          *extra])
    config.save(cfg, run / "config.yaml")
    records = [{"split": "eval", "step": 0, "infom": 0.0, "infoe": 0.0, "infoc": 0.0, "psnr": 10.0}]
    if infom is not None:
        final = {"split": "eval", "step": STEPS, "infom": infom, "infoe": infom, "infoc": infom / 2,
                 "psnr": 20 + 10 * infom}
        if dci is not None:
            final.update(dci_d=dci, dci_c=dci, dci_i=dci, dci_predictor="forest")
        records.append(final)
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return run


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    """shapes3d: qlae x3 (DCI in two), ae x3, beta_vae x1, one unfinished qlae; mpi3d: qlae x2, ae x2 (no DCI)."""
    root = tmp_path_factory.mktemp("sweep")
    for seed, infom, dci in [(1, 0.6, 0.8), (2, 0.7, 0.9), (3, 0.8, None)]:
        make_run(root, "qlae", "shapes3d", seed, infom, dci)
    for seed, infom in [(1, 0.10), (2, 0.11), (3, 0.12)]:
        make_run(root, "ae", "shapes3d", seed, infom)
    make_run(root, "beta_vae", "shapes3d", 1, 0.65)
    make_run(root, "qlae", "shapes3d", 4, None)
    for seed, infom in [(1, 0.5), (2, 0.6)]:
        make_run(root, "qlae", "mpi3d", seed, infom)
    for seed, infom in [(1, 0.2), (2, 0.4)]:
        make_run(root, "ae", "mpi3d", seed, infom)
    return root


def csv_rows(text: str) -> dict[tuple[str, str, str], dict[str, str]]:
    return {(r["dataset"], r["model"], r["metric"]): r for r in csv.DictReader(io.StringIO(text))}


def test_half_width_is_student_t_times_standard_error():
    stat = tables.summarize([1.0, 2.0, 3.0])
    assert stat.n == 3 and stat.mean == pytest.approx(2.0) and stat.sd == pytest.approx(1.0)
    assert stat.half_width == pytest.approx(T2 / math.sqrt(3), rel=1e-6)
    assert tables.t_multiplier(6) == pytest.approx(2.447, abs=5e-4)  # the reference's constants
    assert tables.t_multiplier(27) == pytest.approx(2.052, abs=5e-4)
    assert tables.summarize([1.0, 2.0, 3.0], confidence=0.9).half_width == pytest.approx(2.919986 / math.sqrt(3))
    assert tables.summarize([]) is None


def test_interval_from_runs_matches_hand_computation(sweep):
    rows = csv_rows(tables.to_csv(tables.build_tables(tables.collect_runs([sweep]))))
    entry = rows[("shapes3d", "qlae", "infom")]
    assert int(entry["n"]) == 3  # the unfinished fourth seed is not counted
    assert float(entry["mean"]) == pytest.approx(0.7)
    half = T2 * 0.1 / math.sqrt(3)
    assert float(entry["ci_low"]) == pytest.approx(0.7 - half, rel=1e-6)
    assert float(entry["ci_high"]) == pytest.approx(0.7 + half, rel=1e-6)
    assert float(entry["sd"]) == pytest.approx(0.1)


def test_bold_when_intervals_overlap_the_best():
    best = Stat(3, 0.80, 0.1, 0.05)  # lower bound 0.75
    overlapping = Stat(3, 0.70, 0.1, 0.06)  # upper bound 0.76
    apart = Stat(3, 0.70, 0.1, 0.04)  # upper bound 0.74
    single_in, single_out = Stat(1, 0.76, None, None), Stat(1, 0.74, None, None)  # zero-width
    assert tables.mark_best([apart, best, overlapping, None, single_in, single_out]) == [
        False, True, True, False, True, False]
    assert tables.mark_best([None, None]) == [False, False]
    assert tables.mark_best([Stat(3, 0.5, None, 0.25), Stat(3, 0.125, None, 0.125)]) == [True, True]  # touching


def test_single_run_shows_the_mean_alone(sweep):
    stat = tables.summarize([0.5])
    assert stat.half_width is None and stat.sd is None and stat.low == stat.high == 0.5
    built = tables.build_tables(tables.collect_runs([sweep]))
    markdown = tables.to_markdown(built)
    line = next(ln for ln in markdown.splitlines() if ln.startswith("| β-VAE"))
    assert "**0.650**" in line and "±" not in line  # 0.65 reaches qlae's lower bound 0.45: bold
    entry = csv_rows(tables.to_csv(built))[("shapes3d", "beta_vae", "infom")]
    assert entry["n"] == "1" and entry["sd"] == entry["ci_low"] == entry["ci_high"] == ""


def test_aggregate_averages_means_and_standard_errors():
    a = tables.summarize([1.0, 2.0, 3.0])  # mean 2, se 1/sqrt(3)
    b = tables.summarize([2.0, 4.0, 6.0, 8.0])  # mean 5, se sqrt(20/3)/2
    agg = tables.aggregate([a, b])
    assert agg.n == 7 and agg.mean == pytest.approx(3.5)
    assert agg.half_width == pytest.approx(T6 * (1 / math.sqrt(3) + math.sqrt(20 / 3) / 2) / 2, rel=1e-6)
    assert tables.aggregate([a, tables.summarize([4.0])]).half_width is None  # a dataset without an interval


def test_aggregate_table_keeps_models_present_on_every_dataset(sweep):
    built = tables.build_tables(tables.collect_runs([sweep]))
    assert [t.dataset for t in built] == ["shapes3d", "mpi3d", "aggregate"]
    aggregate = built[-1]
    assert [r.model for r in aggregate.rows] == ["ae", "qlae"]  # beta_vae ran on shapes3d only
    assert aggregate.metrics == ["infom", "infoe", "infoc", "psnr"]  # DCI exists on one dataset only
    qlae = aggregate.rows[1]
    se_shapes, se_mpi = 0.1 / math.sqrt(3), math.sqrt(0.005) / math.sqrt(2)
    assert qlae.n == 5 and qlae.cells["infom"].mean == pytest.approx((0.7 + 0.55) / 2)
    assert qlae.cells["infom"].half_width == pytest.approx(tables.t_multiplier(4) * (se_shapes + se_mpi) / 2)


def test_missing_metric_uses_the_runs_that_have_it(sweep):
    built = tables.build_tables(tables.collect_runs([sweep]))
    shapes, mpi = built[0], built[1]
    assert shapes.metrics == ["infom", "infoe", "infoc", "dci_d", "dci_c", "dci_i", "psnr"]
    assert "dci_d" not in mpi.metrics  # no run on mpi3d has DCI: column dropped
    rows = {r.model: r for r in shapes.rows}
    assert rows["qlae"].cells["dci_d"].n == 2 and rows["qlae"].cells["dci_d"].mean == pytest.approx(0.85)
    assert rows["ae"].cells["dci_d"] is None
    line = next(ln for ln in tables.to_markdown(built).splitlines() if ln.startswith("| AE"))
    assert line.count("–") == 3  # D, C, I


def test_markdown_layout_and_bold(sweep):
    text = tables.to_markdown(tables.build_tables(tables.collect_runs([sweep]), metrics=["InfoM", "psnr"]))
    lines = text.splitlines()
    assert lines[0] == "### Shapes3D"
    assert lines[2] == "| Model | InfoM | PSNR | n |"
    names = [ln.split(" | ")[0][2:] for ln in lines[4:7]]
    assert names == ["AE", "β-VAE", "QLAE (ours)"]  # the reference's row order
    half = T2 * 0.1 / math.sqrt(3)
    assert f"| QLAE (ours) | **0.700 ± {half:.3f}** | **27.00 ± {10 * half:.2f}** | 3 |" in lines
    assert f"| AE | 0.110 ± {T2 * 0.01 / math.sqrt(3):.3f} |" in text  # far below the best: not bold
    assert "### Aggregate (Shapes3D, MPI3D)" in lines


def test_latex_is_a_booktabs_tabular_with_escaped_names(sweep):
    text = tables.to_latex(tables.build_tables(tables.collect_runs([sweep])))
    assert text.count("\\begin{tabular}") == text.count("\\end{tabular}") == 3
    for rule in ("\\toprule", "\\midrule", "\\bottomrule"):
        assert text.count(rule) == 3
    assert "$\\beta$-VAE & \\textbf{0.650}" in text
    assert "\\textbf{0.700 $\\pm$ " in text
    assert "β" not in text and "±" not in text and "–" not in text
    assert tables.latex_escape("my_model 50% & #1") == "my\\_model 50\\% \\& \\#1"


def test_csv_long_format(sweep):
    text = tables.to_csv(tables.build_tables(tables.collect_runs([sweep])))
    reader = csv.DictReader(io.StringIO(text))
    assert reader.fieldnames == ["dataset", "model", "metric", "n", "mean", "sd", "ci_low", "ci_high", "best",
                                 "protocol"]
    rows = csv_rows(text)
    assert rows[("shapes3d", "qlae", "infom")]["best"] == "true"
    assert rows[("shapes3d", "ae", "infom")]["best"] == "false"
    assert ("shapes3d", "ae", "dci_d") not in rows  # missing entries have no line
    assert rows[("aggregate", "qlae", "infom")]["n"] == "5" and rows[("aggregate", "qlae", "infom")]["sd"] == ""


def test_mixed_configs_in_a_group_are_named(tmp_path):
    make_run(tmp_path, "qlae", "shapes3d", 1, 0.5)
    make_run(tmp_path, "qlae", "shapes3d", 2, 0.6, extra=("model.weight_decay=0.0",))
    collection = tables.collect_runs([tmp_path])
    assert len(collection.warnings) == 1 and "model.weight_decay" in collection.warnings[0]
    assert "seed" not in collection.warnings[0] and "run_dir" not in collection.warnings[0]
    split = tables.collect_runs([tmp_path], group_by=["model.weight_decay"])
    assert split.warnings == []
    table = tables.build_tables(split)[0]
    assert [(r.extra, r.n) for r in table.rows] == [((0.0,), 1), ((0.1,), 1)]
    assert "| Model | model.weight_decay | InfoM |" in tables.to_markdown([table])
    with pytest.raises(UserError, match="unknown config key"):
        tables.collect_runs([tmp_path], group_by=["model.nope"])


def test_runs_from_several_stacks_are_noted_once_each(tmp_path):
    stack = {"split": "environment", "step": 0, "torch": "2.13.0+cpu", "cpu": "AMD EPYC", "cpu_capability": "AVX512"}
    for seed, capability in ((1, "AVX512"), (2, "AVX512"), (3, "AVX2")):
        run = make_run(tmp_path, "qlae", "shapes3d", seed, 0.5)
        with (run / "metrics.jsonl").open("a") as log:
            log.write(json.dumps({**stack, "cpu_capability": capability}) + "\n")
    make_run(tmp_path, "qlae", "shapes3d", 4, 0.5)  # written before runs recorded their stack: no note of its own
    notes = [n for n in tables.collect_runs([tmp_path]).notes if "stacks" in n]
    assert len(notes) == 1 and "2 processor/torch stacks" in notes[0]
    assert "AMD EPYC, AVX512, 2.13.0+cpu; AMD EPYC, AVX2, 2.13.0+cpu" in notes[0]
    shutil.rmtree(tmp_path / "qlae-shapes3d-seed3-0")
    assert not [n for n in tables.collect_runs([tmp_path]).notes if "stacks" in n]


def test_no_finished_run_is_an_error(tmp_path):
    make_run(tmp_path, "qlae", "shapes3d", 1, None)
    with pytest.raises(UserError, match="no finished run"):
        tables.collect_runs([tmp_path])


def test_cli_tabulates_a_sweep(sweep, tmp_path, capsys):
    assert main(["table", str(sweep)]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("### Shapes3D\n") and "| QLAE (ours) |" in out
    assert err.count("\n") == 1 and "skipped 1 unfinished run" in err and "qlae-shapes3d-seed4" in err
    target = tmp_path / "table.csv"
    assert main(["table", str(sweep), "--format", "csv", "--out", str(target), "--metrics", "infom,D"]) == 0
    assert {r["metric"] for r in csv.DictReader(target.open())} == {"infom", "dci_d"}


def test_cli_errors_exit_2_with_one_line(sweep, tmp_path, capsys):
    assert main(["table", str(tmp_path)]) == 2  # no runs there
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and err.startswith("latentquant: error:")
    assert main(["table", str(sweep), "--metrics", "InfoX"]) == 2  # no note about skipped runs before it
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "unknown metric 'InfoX'" in err


def test_step_scores_each_run_at_that_evaluation(sweep, capsys):
    """Every synthetic run was evaluated at step 0 (all scores 0), the finished ones also at STEPS: --step 0 takes
    the unfinished run in too, and its numbers are step 0's, not the last step's."""
    at_zero = tables.collect_runs([sweep], step=0)
    assert at_zero.skipped == [] and len(at_zero.groups[("qlae", "shapes3d")]) == 4
    assert {f["infom"] for finals in at_zero.groups.values() for f in finals} == {0.0}
    assert tables.collect_runs([sweep], step=STEPS).groups == tables.collect_runs([sweep]).groups
    assert main(["table", str(sweep), "--step", "0", "--metrics", "InfoM"]) == 0
    out, err = capsys.readouterr()
    assert "| **0.000** |" in out and "Each run scored at step 0." in out and err == ""
    assert main(["table", str(sweep), "--step", "7"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "has an evaluation at step 7" in err
    with pytest.raises(UserError, match="--step must be a step number"):
        tables.collect_runs([sweep], step=-1)


def test_time_columns_add_up_each_runs_sessions_and_are_never_bold(tmp_path, capsys):
    """Two sessions of 4 + 6 steps: wall = their totals summed, ms/step = their `steps` seconds over the steps after
    each session's first (3 + 5). A run whose records leave a gap (a killed session) has no time entry."""
    def with_sessions(run: Path, sessions: list[tuple[int, int, float, float]]) -> None:
        with (run / "metrics.jsonl").open("a") as f:
            for step, n, total, steps in sessions:
                f.write(json.dumps({"split": "time", "step": step, "steps_run": n, "data": 1.0, "first_step": 0.5,
                                    "steps": steps, "evaluations": 0.0, "checkpoints": 0.0, "total": total}) + "\n")

    fast, slow, killed = (make_run(tmp_path, "qlae", "shapes3d", s, 0.5 + s / 10) for s in (1, 2, 3))
    with_sessions(fast, [(4, 4, 60.0, 0.3), (10, 6, 120.0, 0.5)])
    with_sessions(slow, [(10, 10, 360.0, 1.8)])
    with_sessions(killed, [(10, 4, 60.0, 0.3)])  # steps 0..6 left no record
    other = make_run(tmp_path, "ae", "shapes3d", 1, 0.1)
    with_sessions(other, [(10, 10, 30.0, 0.9)])
    stats = tables.build_tables(tables.collect_runs([tmp_path]), ["InfoM", "wall", "ms/step"])[0]
    qlae = next(r for r in stats.rows if r.model == "qlae")
    assert qlae.cells["wall_min"].n == 2 and qlae.cells["wall_min"].mean == pytest.approx((3.0 + 6.0) / 2)
    assert qlae.cells["step_ms"].mean == pytest.approx((1e3 * 0.8 / 8 + 1e3 * 1.8 / 9) / 2)
    ae = next(r for r in stats.rows if r.model == "ae")
    assert ae.cells["wall_min"].mean == pytest.approx(0.5)  # the least time, but times are not bold
    assert not any(r.best["wall_min"] or r.best["step_ms"] for r in stats.rows)

    assert main(["table", str(tmp_path), "--time", "--step", str(STEPS)]) == 0
    out = capsys.readouterr().out
    assert "| wall (min) | ms/step | n |" in out and "4.5 ± " in out and "(n=2)" in out
    assert "Times are of the whole run." in out


def test_each_runs_log_is_read_once(sweep, monkeypatch):
    from latentquant import runs

    reads: list[Path] = []
    real = runs.read_log_file
    monkeypatch.setattr(runs, "read_log_file", lambda path: reads.append(path) or real(path))
    collection = tables.collect_runs([sweep])
    found = runs.find_runs([sweep])
    assert sum(len(g) for g in collection.groups.values()) + len(collection.skipped) == len(found) > 0
    assert sorted(reads) == sorted(runs.RunDir(r).log for r in found)
