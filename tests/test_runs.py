"""Reading run directories back: states, final metrics (with the full suite), discovery."""

import pytest

from latentquant import config, runs
from latentquant import train as train_mod
from latentquant.errors import UserError


def test_finished_run_has_final_metrics_with_the_suite(tiny_args, tmp_path):
    run = tmp_path / "sweep" / "a"
    cfg = config.resolve([*tiny_args, f"run_dir={run}", "train.steps=4", "train.eval_every=100", "eval.suite=true",
                          "eval.dci_predictor=forest", "eval.factorvae_votes=64", "eval.figures=false"])
    train_mod.train(cfg)
    final = runs.final_metrics(run)
    assert final["step"] == 4
    for key in ("infom", "infoe", "infoc", "psnr", "dci_d", "dci_c", "dci_i", "mig", "factorvae_score"):
        assert 0.0 <= final[key] <= 100.0, key
    assert final["dci_predictor"] == "forest"
    assert runs.run_state(run) == "finished"
    # step 0 is not the last step: the suite ran once only
    first = [r for r in runs.read_log(run) if r["split"] == "eval" and r["step"] == 0]
    assert "dci_d" not in first[0]
    assert runs.find_runs([tmp_path / "sweep"]) == [run]
    assert runs.find_runs([run, tmp_path]) == [run]


def test_unfinished_and_empty_states(tiny_args, tmp_path):
    run = tmp_path / "b"
    cfg = config.resolve([*tiny_args, f"run_dir={run}", "train.steps=4", "train.eval_every=100"])
    train_mod.train(cfg)
    assert runs.run_state(run) == "finished"
    assert runs.last_checkpoint(run) == 4
    # a longer target (as a resumed run with more steps would have) is not reached yet
    text = (run / "config.yaml").read_text().replace("steps: 4", "steps: 8")
    (run / "config.yaml").write_text(text)
    assert runs.final_metrics(run) is None and runs.run_state(run) == "resumable"
    # a killed writer can leave half a line
    with open(run / "metrics.jsonl", "a") as f:
        f.write('{"split": "eval", "st')
    assert [r["split"] for r in runs.read_log(run)][-2:] == ["eval", "time"]  # the half line is skipped
    assert runs.run_state(tmp_path / "nothing") == "empty"


def test_find_runs_names_what_is_wrong(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        runs.find_runs([tmp_path / "missing"])
    with pytest.raises(UserError, match="holds none"):
        runs.find_runs([tmp_path])


def test_suite_predictor_is_checked():
    with pytest.raises(UserError, match="eval.dci_predictor"):
        config.resolve(["eval.dci_predictor=svm"])
