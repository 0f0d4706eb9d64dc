"""End-to-end training on a tiny official-format file: run directory, resume, bad input."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import TINY, timeless_log
from safetensors.numpy import load_file

from latentquant import config
from latentquant import train as train_mod
from latentquant.models import optim


def tiny_config(tiny_h5, run_dir, *extra):
    return config.resolve([*TINY, f"data.path={tiny_h5}", f"run_dir={run_dir}", *extra])


def test_run_directory_has_everything(tiny_h5, tmp_path):
    cfg = tiny_config(tiny_h5, tmp_path / "run", "train.steps=6", "train.eval_every=100")
    metrics = train_mod.train(cfg)
    run = tmp_path / "run"
    assert {"infom", "infoe", "infoc", "psnr"} <= set(metrics)
    assert (run / "config.yaml").is_file() and config.load(run / "config.yaml").model.num_latents == 12
    lines = [json.loads(ln) for ln in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines if r["split"] == "eval"] == [0, 6]
    assert [r["step"] for r in lines if r["split"] == "train"] == [2, 4, 6]
    for step in (0, 6):
        for name in ("metrics.json", "nmi.png", "traversals.png", "reconstructions.png"):
            assert (run / "eval" / f"step_{step}" / name).is_file(), name
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    assert (run / "checkpoints" / "step_6.safetensors").is_file()
    # the checkpoint holds tensors only: safetensors cannot carry code
    tensors = load_file(run / "checkpoints" / "step_6.safetensors")
    assert "model.latent.values" in tensors


def test_the_run_ends_with_where_its_time_went(tiny_h5, tmp_path, capsys, monkeypatch):
    waits = {"evaluate": 0.2}
    original = train_mod.evaluate

    def slow_evaluate(*args, **kwargs):
        import time
        time.sleep(waits["evaluate"])
        return original(*args, **kwargs)

    monkeypatch.setattr(train_mod, "evaluate", slow_evaluate)
    train_mod.train(tiny_config(tiny_h5, tmp_path / "run", "train.steps=4", "train.eval_every=100"))
    line = next(ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("time: "))
    seconds = {name: float(value) for name, value in
               (part.rsplit(" ", 2)[:2] for part in line[len("time: "):].split("; ")[0].split(", "))}
    assert set(seconds) == {"data", "first step", "steps", "evaluations", "checkpoints", "other"}
    assert seconds["evaluations"] >= 0.4  # two evaluations (steps 0 and 4), each slowed by 0.2 s
    assert "total 0 min" in line


def test_each_session_records_its_time_and_a_killed_one_leaves_the_wall_time_unknown(tiny_h5, tmp_path,
                                                                                      monkeypatch):
    from latentquant import runs

    steps = ["train.steps=8", "train.checkpoint_every=4", "train.eval_every=100", "eval.figures=false"]
    train_mod.train(tiny_config(tiny_h5, tmp_path / "straight", *steps))
    records = [r for r in runs.read_log(tmp_path / "straight") if r["split"] == "time"]
    assert [(r["step"], r["steps_run"]) for r in records] == [(8, 8)]
    assert records[0]["total"] >= records[0]["steps"] + records[0]["first_step"] > 0
    spent = runs.time_spent(tmp_path / "straight")
    assert spent["wall_min"] == pytest.approx(records[0]["total"] / 60)
    assert spent["step_ms"] == pytest.approx(1e3 * records[0]["steps"] / 7)  # the first step is timed apart

    train_until_crash(tiny_config(tiny_h5, tmp_path / "killed", *steps), monkeypatch, step=6)
    train_mod.train(config.resume(tmp_path / "killed"))  # steps 4..8 again; steps 0..4 took an unknown time
    assert [(r["step"], r["steps_run"]) for r in runs.read_log(tmp_path / "killed") if r["split"] == "time"] == \
        [(8, 4)]
    assert runs.time_spent(tmp_path / "killed") is None


def test_the_total_time_never_shows_60_seconds(monkeypatch):
    clock = iter([1000.0, 1000.0 + 419.6])
    monkeypatch.setattr(train_mod.time, "perf_counter", lambda: next(clock))
    assert train_mod.TimeSpent().summary(compiled=False).endswith("total 7 min 0 s")


class Crash(Exception):
    pass


def train_until_crash(cfg, monkeypatch, step: int) -> None:
    """Train `cfg` and crash inside update `step` (after the checkpoints before it, before its own)."""
    calls = {"n": 0}
    original = optim.clip_gradients

    def crash(optimizer, clip):
        calls["n"] += 1
        if calls["n"] == step:
            raise Crash()
        original(optimizer, clip)

    monkeypatch.setattr(optim, "clip_gradients", crash)
    with pytest.raises(Crash):
        train_mod.train(cfg)
    monkeypatch.setattr(optim, "clip_gradients", original)


def test_killed_run_resumes_to_the_same_end(tiny_h5, tmp_path, monkeypatch):
    steps = ["train.steps=12", "train.checkpoint_every=4", "train.eval_every=100", "train.keep_checkpoints=5"]
    train_mod.train(tiny_config(tiny_h5, tmp_path / "straight", *steps))
    train_until_crash(tiny_config(tiny_h5, tmp_path / "killed", *steps), monkeypatch, step=7)
    assert not (tmp_path / "killed" / "checkpoints" / "step_8.json").exists()

    resumed = config.resume(tmp_path / "killed")
    train_mod.train(resumed)

    a = load_file(tmp_path / "straight" / "checkpoints" / "step_12.safetensors")
    b = load_file(tmp_path / "killed" / "checkpoints" / "step_12.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        assert (a[k] == b[k]).all(), k

    assert timeless_log(tmp_path / "straight") == timeless_log(tmp_path / "killed")


def run_cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "latentquant.cli", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=120)


@pytest.mark.parametrize(
    "args, message",
    [
        (["model.nope=1"], "takes no key 'model.nope'"),
        (["train.steps=ten"], "train.steps expects an integer"),
        (["data.path=/no/such/3dshapes.h5"], "/no/such/3dshapes.h5"),
    ],
)
def test_bad_input_is_one_line_exit_2_nothing_written(args, message, tmp_path):
    proc = run_cli("train", *args, f"run_dir={tmp_path / 'run'}", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "run").exists()


def test_unwritable_run_directory(tiny_h5, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    proc = run_cli("train", *TINY, f"data.path={tiny_h5}", f"run_dir={blocker / 'run'}", cwd=tmp_path)
    assert proc.returncode == 2 and "cannot write the run directory" in proc.stderr
    assert proc.stderr.strip().count("\n") == 0
    assert blocker.read_text() == "not a directory"


def test_cli_prints_final_scores(tiny_h5, tmp_path):
    proc = run_cli("train", *TINY, f"data.path={tiny_h5}", f"run_dir={tmp_path / 'r'}", "train.steps=2",
                   "eval.figures=false", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    last = proc.stdout.strip().splitlines()[-1]
    for key in ("InfoM", "InfoE", "InfoC", "PSNR"):
        assert key in last
    assert Path(tmp_path / "r" / "config.yaml").is_file()


@pytest.mark.slow
def test_eval_command_reproduces_training_evaluation(tiny_h5, tmp_path):
    run = tmp_path / "run"
    train_mod.train(tiny_config(tiny_h5, run, "train.steps=4", "train.checkpoint_every=2", "train.eval_every=2",
                                "train.keep_checkpoints=3"))
    during = json.loads((run / "eval" / "step_2" / "metrics.json").read_text())
    for path in (run / "eval" / "step_2").iterdir():
        path.unlink()
    proc = run_cli("eval", str(run), "step=2", "--factorvae-votes", "40", "--dci-predictor", "forest", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    after = json.loads((run / "eval" / "step_2" / "metrics.json").read_text())
    for key in ("infom", "infoe", "infoc", "psnr"):
        assert after[key] == pytest.approx(during[key], abs=1e-6), key
    assert np.allclose(after["nmi"], during["nmi"], atol=1e-6)
    for key in ("dci_d", "dci_c", "dci_i", "mig", "sap", "dci_es_explicitness", "factorvae_score", "infoc_gap"):
        assert 0.0 <= after[key] <= 1.0, key
    assert after["dci_predictor"] == "forest"
    assert (run / "eval" / "step_2" / "traversals.png").is_file()
    assert "InfoM" in proc.stdout
    proc = run_cli("eval", str(run), "step=3", cwd=tmp_path)
    assert proc.returncode == 2 and "no checkpoint for step 3" in proc.stderr


def _tiny_dsprites(tmp_path):
    from latentquant.data.dsprites import write_dsprites_npz

    return write_dsprites_npz(tmp_path / "dsprites.npz", subset=200)


def _tiny_mpi3d(tmp_path):
    from latentquant.data.mpi3d import write_mpi3d_npz

    return write_mpi3d_npz(tmp_path / "mpi3d_toy.npz", subset=200)


def _tiny_falcor3d(tmp_path):
    from latentquant.data.nvlabs import write_falcor3d_folder

    return write_falcor3d_folder(tmp_path / "Falcor3D_down128", subset=60)


def _tiny_isaac3d(tmp_path):
    from latentquant.data.nvlabs import write_isaac3d_folder

    return write_isaac3d_folder(tmp_path / "Isaac3D_down128", subset=60)


TINY_FILES = {"dsprites": _tiny_dsprites, "mpi3d": _tiny_mpi3d, "falcor3d": _tiny_falcor3d,
              "isaac3d": _tiny_isaac3d}


@pytest.mark.parametrize("name", sorted(TINY_FILES))
def test_trains_on_every_dataset(name, tmp_path, monkeypatch):
    path = TINY_FILES[name](tmp_path)
    monkeypatch.setenv("LATENTQUANT_CACHE", str(tmp_path / "cache"))  # the PNG folders' resize cache
    cfg = config.resolve([*TINY, f"data={name}", f"data.path={path}", f"run_dir={tmp_path / 'run'}",
                          "train.steps=2", "data.num_eval=40"])
    metrics = train_mod.train(cfg)
    assert np.isfinite(metrics["psnr"]) and 0.0 <= metrics["infom"] <= 1.0
    assert (tmp_path / "run" / "eval" / "step_2" / "traversals.png").is_file()


@pytest.mark.parametrize("model", ["qlae", "qlinfowgan_gp"])
def test_compile_applies_to_every_model(model, tiny_h5, tmp_path, monkeypatch):
    import torch

    compiled = []

    def record(fn, *args, **kwargs):  # stands in for torch.compile: records what would be compiled
        compiled.append(fn)
        return fn

    monkeypatch.setattr(torch, "compile", record)
    monkeypatch.setattr(torch.nn.Module, "compile", lambda self, *a, **k: compiled.append(self))
    train_mod.train(tiny_config(tiny_h5, tmp_path / "r", f"model={model}", "train.steps=2", "train.compile=true",
                                "eval.figures=false"))
    assert len(compiled) == 1


def test_a_failing_compiler_leaves_one_warning_and_an_eager_run_that_learns(tiny_h5, tmp_path, monkeypatch, capsys):
    import torch
    from torch._dynamo.exc import TorchDynamoException

    attempts = []

    def broken(fn, *args, **kwargs):  # what torch.compile hands back on a machine without a C++ compiler
        def call(*a, **k):
            attempts.append(1)
            raise TorchDynamoException("InvalidCxxCompiler: No working C++ compiler found\n(a long traceback)")
        return call

    monkeypatch.setattr(torch, "compile", broken)
    train_mod.train(tiny_config(tiny_h5, tmp_path / "r", "train.steps=30", "train.compile=true", "eval.figures=false",
                                "train.lr=3e-3"))
    err = capsys.readouterr().err
    assert attempts == [1]  # tried once, then eager for good
    assert err.count("torch.compile failed (InvalidCxxCompiler: No working C++ compiler found); training goes on "
                     "eager") == 1 and "a long traceback" not in err
    bce = [r["bce"] for r in timeless_log(tmp_path / "r") if r.get("split") == "train"]
    assert bce[-1] < bce[0]


def test_an_error_of_the_loss_itself_is_not_hidden_by_the_compile_fallback(capsys):
    from latentquant.models.base import compiled_or_eager

    def loss(x):
        raise ValueError(f"bad batch {x}")

    with pytest.raises(ValueError, match="bad batch 3"):
        compiled_or_eager(loss)(3)
    assert "torch.compile failed" not in capsys.readouterr().err


def test_cosine_schedule_warms_up_peaks_and_decays_to_zero():
    cfg = config.resolve(["train.schedule=cosine", "train.warmup=10", "train.steps=110", "train.lr=0.002"]).train
    rates = [train_mod.learning_rate(cfg, s) for s in range(110)]
    assert rates[0] == pytest.approx(0.0002) and rates[9] == pytest.approx(0.002)  # linear warm-up to the peak
    assert all(a < b for a, b in zip(rates[:9], rates[1:10], strict=True))
    assert all(a > b for a, b in zip(rates[10:], rates[11:], strict=False))  # then only down
    assert rates[60] == pytest.approx(0.001) and 0 < rates[-1] < 1e-5  # half way, and nearly 0 at the end
    assert train_mod.learning_rate(config.resolve([]).train, 3000) == config.resolve([]).train.lr  # constant
    with pytest.raises(config.UserError, match="train.schedule"):
        config.resolve(["train.schedule=linear"])


def test_constant_schedule_warms_up_holds_then_cools_down_to_zero():
    cfg = config.resolve(["train.warmup=10", "train.cooldown=0.36364", "train.steps=110",
                          "train.lr=0.002"]).train  # the last 40 updates
    rates = [train_mod.learning_rate(cfg, s) for s in range(110)]
    assert rates[0] == pytest.approx(0.0002) and rates[9] == pytest.approx(0.002)  # the shared warm-up
    assert rates[10:71] == [0.002] * 61  # stable; the first of the last 40 updates still at the peak
    assert all(a > b for a, b in zip(rates[70:], rates[71:], strict=False))  # then a straight line down
    assert rates[-1] == pytest.approx(0.002 / 40) and rates[90] == pytest.approx(0.001)
    flat = config.resolve(["train.cooldown=0", "train.steps=110"]).train
    assert {train_mod.learning_rate(flat, s) for s in range(110)} == {flat.lr} and not train_mod.rate_varies(flat)
    cosine = config.resolve(["train.schedule=cosine", "train.steps=110"]).train  # ignores the preset's cool-down
    assert train_mod.learning_rate(cosine, 55) == pytest.approx(cosine.lr / 2) and config.cooldown_steps(cosine) == 0


@pytest.mark.parametrize(("overrides", "problem"), [
    (["train.cooldown=-0.1"], r"train.cooldown must be a fraction of train.steps in \[0, 1\]"),
    (["train.cooldown=1.5"], r"train.cooldown must be a fraction"),
    (["train.cooldown=nan"], "train.cooldown expects a number"),
    (["train.steps=100", "train.warmup=60", "train.cooldown=0.5"], r"the cool-down \(50 steps\) must fit"),
])
def test_bad_cooldowns_are_refused(overrides, problem):
    with pytest.raises(config.UserError, match=problem):
        config.resolve(overrides)


@pytest.mark.parametrize("schedule", [["train.schedule=cosine", "train.warmup=2"],
                                      ["train.warmup=1", "train.cooldown=0.625"]])
def test_a_killed_scheduled_run_resumes_to_the_same_end_and_logs_its_rate(schedule, tiny_h5, tmp_path, monkeypatch):
    steps = ["train.steps=8", "train.checkpoint_every=4", "train.eval_every=100", *schedule]
    train_mod.train(tiny_config(tiny_h5, tmp_path / "straight", *steps))
    train_until_crash(tiny_config(tiny_h5, tmp_path / "killed", *steps), monkeypatch, step=6)
    train_mod.train(config.resume(tmp_path / "killed"))  # from step 4: the rates are a function of the step
    a = load_file(tmp_path / "straight" / "checkpoints" / "step_8.safetensors")
    b = load_file(tmp_path / "killed" / "checkpoints" / "step_8.safetensors")
    assert all((a[k] == b[k]).all() for k in a)
    logged = [json.loads(ln) for ln in (tmp_path / "straight" / "metrics.jsonl").read_text().splitlines()]
    rates = [r["lr"] for r in logged if r["split"] == "train"]
    cfg = config.resolve([*schedule, "train.steps=8"]).train
    assert rates == pytest.approx([train_mod.learning_rate(cfg, s) for s in (1, 3, 5, 7)])
    assert len(set(rates)) > 1  # the schedule moved the rate


def test_a_run_made_before_the_cool_down_existed_resumes_at_its_constant_rate(tiny_h5, tmp_path):
    run = tmp_path / "old"
    train_mod.train(tiny_config(tiny_h5, run, "train.steps=4", "train.cooldown=0", "train.eval_every=100"))
    saved = run / "config.yaml"
    assert "cooldown: 0" in saved.read_text()
    saved.write_text("".join(ln for ln in saved.read_text().splitlines(True) if "cooldown" not in ln))
    cfg = config.resume(run, ["train.steps=8"])  # the preset's cool-down must not reach an old run
    assert cfg.train.cooldown == 0 and not train_mod.rate_varies(cfg.train)


def flushes_denormals() -> bool:
    return (torch.tensor([1e-39]) * 1.0).item() == 0.0


def test_training_steps_flush_subnormals_and_the_default_is_restored(tiny_h5, tmp_path, monkeypatch):
    seen: list[bool] = []
    original = train_mod.to_input

    def watching(*args, **kwargs):
        seen.append(flushes_denormals())
        return original(*args, **kwargs)

    monkeypatch.setattr(train_mod, "to_input", watching)
    assert not flushes_denormals()
    train_mod.train(tiny_config(tiny_h5, tmp_path / "run", "train.steps=3", "train.eval_every=100",
                                "eval.figures=false"))
    assert seen[:3] == [True] * 3  # every training batch (evaluations read theirs elsewhere)
    assert not flushes_denormals()


def test_each_session_records_its_stack_and_a_resume_onto_another_warns(tiny_h5, tmp_path, monkeypatch, capsys):
    from latentquant import environment, runs
    from latentquant.experiments import report

    steps = ["train.steps=8", "train.checkpoint_every=4", "train.eval_every=100", "eval.figures=false"]
    train_until_crash(tiny_config(tiny_h5, tmp_path / "run", *steps), monkeypatch, step=6)
    first = runs.RunDir(tmp_path / "run").environments()
    assert [r["step"] for r in first] == [0]
    assert first[0]["torch"] == torch.__version__ and first[0]["device"] == "cpu"
    assert first[0]["cpu"] == environment.cpu_name() != ""
    assert first[0]["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    capsys.readouterr()

    real = environment.describe
    monkeypatch.setattr(environment, "describe", lambda device: {**real(device), "torch": "9.9.9"})
    train_mod.train(config.resume(tmp_path / "run"))
    warned = [ln for ln in capsys.readouterr().err.splitlines() if "another stack" in ln]
    assert len(warned) == 1 and f"torch {torch.__version__} -> 9.9.9" in warned[0] and "from step 4" in warned[0]
    sessions = runs.RunDir(tmp_path / "run").environments()
    assert [(r["step"], r["torch"]) for r in sessions] == [(0, torch.__version__), (4, "9.9.9")]
    page = report.write_report(tmp_path / "run").read_text()
    assert "from step 0: " in page and "from step 4: " in page and "torch 9.9.9" in page


def test_a_resume_on_the_same_stack_does_not_warn(tiny_h5, tmp_path, monkeypatch, capsys):
    from latentquant import runs

    steps = ["train.steps=8", "train.checkpoint_every=4", "train.eval_every=100", "eval.figures=false"]
    train_until_crash(tiny_config(tiny_h5, tmp_path / "run", *steps), monkeypatch, step=6)
    capsys.readouterr()
    train_mod.train(config.resume(tmp_path / "run"))
    assert "another stack" not in capsys.readouterr().err
    assert [r["step"] for r in runs.RunDir(tmp_path / "run").environments()] == [0, 4]


def test_stack_differences_compare_only_what_both_records_hold():
    from latentquant.environment import differences

    now = {"latentquant": "0.1.0", "torch": "2.13.0", "python": "3.12", "cpu": "B", "device": "cpu"}
    assert differences({**now}, now) == []
    assert differences({"torch": "2.12.0", "cpu": "A"}, now) == ["torch 2.12.0 -> 2.13.0", "cpu A -> B"]
