"""`latentquant sweep`: grid expansion, local and Ray trials, failures, resuming a killed sweep. Stopping a sweep
and trials another process is writing: test_sweep_processes.py."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from safetensors.numpy import load_file

from latentquant import cli, config, runs
from latentquant import train as train_mod
from latentquant.errors import UserError
from latentquant.experiments.sweep import Trial, expand, load_trials, run_sweep, split_values

FAST = ["train.eval_every=100", "train.eval_early=false", "eval.figures=false"]
LINUX = sys.platform.startswith("linux")


def test_expand_is_the_grid_in_the_order_given():
    trials = expand(["model=qlae,ae", "seed=1,2,3", "train.steps=5"])
    assert [t.name for t in trials] == ["model=qlae,seed=1", "model=qlae,seed=2", "model=qlae,seed=3",
                                        "model=ae,seed=1", "model=ae,seed=2", "model=ae,seed=3"]
    assert trials[4] == Trial("model=ae,seed=2", ("model=ae", "seed=2", "train.steps=5"))
    assert expand(["seed=7"]) == [Trial("trial", ("seed=7",))]
    assert expand([]) == [Trial("trial", ())]


def test_expand_splits_on_top_level_commas_only():
    assert split_values("[16,32],[32,64]") == ["[16,32]", "[32,64]"]
    assert split_values("'a,b',c") == ["'a,b'", "c"]
    assert expand(["model.widths=[8,16,16]"]) == [Trial("trial", ("model.widths=[8,16,16]",))]
    trials = expand(["model.widths=[8,16,16],[16,16,32]", "data.path=/data/a.h5,/data/b.h5"])
    assert [t.name for t in trials] == ["model.widths=8-16-16,data.path=data-a.h5",
                                        "model.widths=8-16-16,data.path=data-b.h5",
                                        "model.widths=16-16-32,data.path=data-a.h5",
                                        "model.widths=16-16-32,data.path=data-b.h5"]
    assert trials[2].overrides == ("model.widths=[16,16,32]", "data.path=/data/a.h5")
    assert all("/" not in t.name and len(t.name) <= 120 for t in expand([f"data.path=/{'x' * 300},/y"]))


def test_expand_refuses_bad_input_before_anything_runs(tmp_path, capsys):
    with pytest.raises(UserError, match="share the directory"):
        expand(["model.widths=[8,16],8-16"])
    with pytest.raises(UserError, match="given twice"):
        expand(["model=ae", "model.name=qlae,ae"])
    with pytest.raises(UserError, match="set by the sweep"):
        expand(["run_dir=x"])
    with pytest.raises(UserError, match="empty value"):
        expand(["seed=1,"])
    with pytest.raises(UserError, match="trial seed=x: seed expects an integer"):
        expand(["seed=1,x"])
    out = tmp_path / "sweep"
    assert cli.main(["sweep", "model=qlae,nope", "--out", str(out)]) == 2
    assert "unknown model 'nope'" in capsys.readouterr().err
    assert cli.main(["sweep", "train.nope=1,2", "--out", str(out)]) == 2
    assert "unknown config key 'train.nope'" in capsys.readouterr().err
    assert not out.exists()


def test_dry_run_and_resume_without_a_sweep(tmp_path, capsys):
    assert cli.main(["sweep", "model=qlae,ae", "--dry-run", "--out", str(tmp_path / "s")]) == 0
    assert "  model=ae    model=ae\n" in capsys.readouterr().out and not (tmp_path / "s").exists()
    assert cli.main(["sweep", "--resume", "--out", str(tmp_path / "s")]) == 2
    assert "no sweep.json" in capsys.readouterr().err
    assert cli.main(["sweep", "--resume"]) == 2


def test_local_sweep_ends_with_ordinary_run_dirs(tiny_args, tmp_path, capsys):
    out = tmp_path / "sweep"
    args = ["sweep", "model=qlae,ae", *tiny_args, "train.steps=4", *FAST, "--workers", "2", "--out", str(out)]
    assert cli.main(args) == 0
    printed = capsys.readouterr().out
    names = ["model=qlae", "model=ae"]
    assert runs.find_runs([out]) == sorted(out / n for n in names)
    for name, model in zip(names, ["qlae", "ae"], strict=True):
        assert runs.run_state(out / name) == "finished"
        assert runs.read_config(out / name).model.name == model
        assert f"{name} finished (InfoM" in printed
    saved = json.loads((out / "sweep.json").read_text())
    assert load_trials(out) == expand(["model=qlae,ae", *tiny_args, "train.steps=4", *FAST])
    assert saved["options"]["workers"] == 2 and saved["options"]["threads"] == max(1, os.cpu_count() // 2)
    status = json.loads((out / "status.json").read_text())
    assert status["counts"]["finished"] == 2 and status["counts"]["failed"] == 0
    assert {n: t["state"] for n, t in status["trials"].items()} == dict.fromkeys(names, "finished")
    assert status["trials"]["model=ae"]["metrics"]["step"] == 4
    assert "done 2 · running 0 · failed 0 · pending 0" in printed
    # the same out dir again, without --resume, is refused
    assert cli.main(args) == 2
    assert "--resume" in capsys.readouterr().err


def test_failed_trial_is_reported_and_the_others_go_on(tiny_args, tmp_path, capsys):
    broken = tmp_path / "broken.h5"
    broken.write_text("not an HDF5 file")
    good = next(a for a in tiny_args if a.startswith("data.path="))
    rest = [a for a in tiny_args if a != good]
    out = tmp_path / "sweep"
    # one worker, the broken trial first: the good one still runs after it failed
    assert cli.main(["sweep", f"data.path={broken},{good[10:]}", *rest, "train.steps=2", *FAST,
                     "--out", str(out)]) == 1
    printed = capsys.readouterr().out
    bad_name, good_name = (t.name for t in load_trials(out))
    assert f"{bad_name} failed: exit code 2: latentquant: error: {broken}: cannot open as HDF5" in printed
    assert runs.run_state(out / good_name) == "finished"
    status = json.loads((out / "status.json").read_text())
    assert status["trials"][bad_name]["state"] == "failed" and "HDF5" in status["trials"][bad_name]["error"]
    assert status["trials"][good_name]["state"] == "finished"
    assert f"1 finished, 1 failed ({bad_name})" in printed


@pytest.mark.slow
def test_killed_sweep_resumes(tiny_args, tmp_path):
    out = tmp_path / "sweep"
    fixed = [*tiny_args, "train.steps=30", "train.checkpoint_every=5", "train.keep_checkpoints=10", *FAST]
    cmd = [sys.executable, "-m", "latentquant.cli", "sweep", "seed=1,2", *fixed, "--out", str(out)]
    # its own session, so killing it takes its trial subprocesses too, as a lost machine would
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        while not (runs.last_checkpoint(out / "seed=2") and runs.run_state(out / "seed=2") != "finished"):
            assert proc.poll() is None, "the sweep ended before it could be killed"
            time.sleep(0.02)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert runs.run_state(out / "seed=1") == "finished" and runs.run_state(out / "seed=2") == "resumable"
    killed_at = runs.last_checkpoint(out / "seed=2")
    first_log = (out / "seed=1" / "metrics.jsonl").read_bytes()

    results = run_sweep(out, load_trials(out), resume=True, echo=lambda line: None)
    assert results == {"seed=1": "finished", "seed=2": "finished"}
    assert (out / "seed=1" / "metrics.jsonl").read_bytes() == first_log  # not run again
    assert (out / "seed=1" / "train.log").read_text().count("$ latentquant train") == 1
    log = (out / "seed=2" / "train.log").read_text()
    assert f"$ latentquant train resume={out / 'seed=2'}\n" in log and f"steps={killed_at}->30" in log

    # the resumed trial ends exactly where an uninterrupted run of its overrides ends
    straight = tmp_path / "straight"
    train_mod.train(config.resolve([*fixed, "seed=2", "train.threads=1", f"run_dir={straight}"]))
    a = load_file(straight / "checkpoints" / "step_30.safetensors")
    b = load_file(out / "seed=2" / "checkpoints" / "step_30.safetensors")
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)


@pytest.mark.slow
def test_ray_backend_runs_trials_on_a_local_instance(tiny_args, tmp_path, capsys, monkeypatch):
    ray = pytest.importorskip("ray")
    started = []
    init = ray.init
    monkeypatch.setattr(ray, "init", lambda **kwargs: started.append(kwargs) or init(**kwargs))
    out = tmp_path / "sweep"
    assert cli.main(["sweep", "seed=1,2", *tiny_args, "train.steps=2", *FAST, "--backend", "ray",
                     "--workers", "2", "--threads", "1", "--out", str(out)]) == 0
    assert "2 at a time, 1 thread each, ray" in capsys.readouterr().out
    for name in ("seed=1", "seed=2"):
        assert runs.run_state(out / name) == "finished"
    assert [kwargs.get("num_cpus") for kwargs in started] == [2]  # one local instance, 2 CPUs
    assert not ray.is_initialized()  # the instance the sweep started is shut down


def test_core_does_not_import_ray():
    code = "import sys, latentquant, latentquant.cli, latentquant.experiments.sweep; print('ray' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "False"
