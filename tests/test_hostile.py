"""The run directory as a hostile but realistic user meets it: every case either works correctly or is refused
with one line (exit code 2) before anything is written. One test per case of the trunk review, plus our own.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import yaml
from helpers import TINY, timeless_log
from safetensors.numpy import load_file

from latentquant import cli, config, runs
from latentquant import train as train_mod
from latentquant.errors import UserError

STEPS = 6


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


def run_cli(*args: str, cwd: Path) -> Result:
    """`latentquant ARGS` in this process (a subprocess would spend seconds importing torch each time)."""
    out, err = io.StringIO(), io.StringIO()
    here = os.getcwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            code = cli.main(list(args))
    finally:
        os.chdir(here)
    return Result(code, out.getvalue(), err.getvalue())


def one_line_error(proc: Result, *needles: str) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("latentquant: error:")]
    assert len(errors) == 1, proc.stderr
    for needle in needles:
        assert needle in errors[0], (needle, errors[0])


def digest(run: Path) -> dict[str, bytes]:
    """Every file of a run directory by relative path (to show that a refused command wrote nothing)."""
    return {str(p.relative_to(run)): p.read_bytes() for p in sorted(run.rglob("*"))
            if p.is_file() and p.name != ".lock"}


@pytest.fixture(scope="module")
def finished(tmp_path_factory, tiny_h5):
    """A finished 6-step run (checkpoints at 3 and 6), trained once per module; tests copy it."""
    run = tmp_path_factory.mktemp("hostile") / "run"
    train_mod.train(config.resolve([*TINY, f"data.path={tiny_h5}", f"run_dir={run}", f"train.steps={STEPS}",
                                    "train.checkpoint_every=3", "train.eval_every=3", "eval.figures=false"]))
    return run


@pytest.fixture
def run(finished, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(finished, copy)
    return copy


# --- resume with overrides --------------------------------------------------------------------------------------


def test_extending_a_finished_run_records_the_new_end_and_what_changed(run, tmp_path):
    train_mod.train(config.resume(run, ["train.steps=8"]))
    cfg = runs.read_config(run)
    assert cfg.train.steps == 8 and cfg.changes == [{"step": STEPS, "train.steps": 8}]
    final = runs.final_metrics(run)
    assert final is not None and final["step"] == 8  # what `table` and `sweep --resume` read
    evals = [r["step"] for r in runs.read_log(run) if r["split"] == "eval"]
    assert evals == [0, 3, STEPS, 8]  # the old end's evaluation is kept, not lost


def test_learning_rate_changed_on_resume_is_applied_and_recorded(run):
    cfg = config.resume(run, ["train.steps=8", "train.lr=0.05"])
    train_mod.train(cfg)
    meta = json.loads((run / "checkpoints" / "step_8.json").read_text())
    lrs = {g["lr"] for key, opt in meta.items() if key.startswith("optimizer") for g in opt["param_groups"]}
    assert lrs == {train_mod.learning_rate(cfg.train, 7)}  # the last update's rate, under the preset's cool-down
    assert 0 < train_mod.learning_rate(cfg.train, 7) < 0.05 == train_mod.learning_rate(cfg.train, 5)
    assert runs.read_config(run).changes[-1] == {"step": STEPS, "train.steps": 8, "train.lr": 0.05}


@pytest.mark.parametrize("override, key", [
    ("train.batch_size=8", "train.batch_size"), ("model=ae", "model.name"), ("model.widths=[8,16,32]", "model.widths"),
    ("seed=3", "seed"), ("data.image_size=16", "data.image_size"), ("model.lambda_quant=0.5", "model.lambda_quant"),
])
def test_resume_refuses_what_the_checkpoints_fix(run, override, key):
    before = digest(run)
    proc = run_cli("train", f"resume={run}", override, cwd=run.parent)
    one_line_error(proc, f"cannot change {key} on resume")
    assert digest(run) == before


def test_restating_a_saved_value_on_resume_is_not_a_change(run):
    cfg = config.resume(run, ["train.batch_size=16", "seed=100"])
    assert cfg.changes == []


# --- keys and values --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("args, needle", [
    (["model=qlae", "model.beta=5"], "model qlae takes no key 'model.beta'"),
    (["model=qlae", "model.lambda_gp=3"], "model qlae takes no key 'model.lambda_gp'"),
    (["train.lr=.inf"], "train.lr must be a finite positive number"),
    (["train.lr=nan"], "train.lr"),
    (["eval.batch_size=0"], "eval.batch_size must be positive"),
    (["train.threads=-3"], "train.threads must be 0"),
    (["train.keep_checkpoints=0"], "train.keep_checkpoints must be positive"),
    (["model.num_values=0"], "model.num_values must be positive"),
    (["eval.dci_predictor=svm"], "eval.dci_predictor"),
])
def test_bad_values_are_refused_before_anything_is_written(args, needle, tmp_path, tiny_h5):
    proc = run_cli("train", *TINY, f"data.path={tiny_h5}", *args, f"run_dir={tmp_path / 'r'}", cwd=tmp_path)
    one_line_error(proc, needle)
    assert not (tmp_path / "r").exists()


def test_a_diverging_run_stops_at_once_and_stays_resumable(tmp_path, tiny_h5):
    run = tmp_path / "r"
    proc = run_cli("train", *TINY, f"data.path={tiny_h5}", f"run_dir={run}", "train.steps=40", "train.lr=1e8",
                   "train.checkpoint_every=1", "train.clip=0", "eval.figures=false", cwd=tmp_path)
    one_line_error(proc, "loss term", "resume")
    saved = runs.RunDir(run).checkpoint_steps()
    for step in saved:  # no checkpoint holds a non-finite weight
        assert all(np.isfinite(v).all() for v in load_file(run / "checkpoints" / f"step_{step}.safetensors").values())
    text = (run / "metrics.jsonl").read_text()
    assert "NaN" not in text and "Infinity" not in text
    for line in text.splitlines():
        json.loads(line)  # strict JSON
    last = runs.RunDir(run).last_checkpoint()
    assert last is not None and last < 40


def test_metrics_jsonl_is_strict_json_with_null_for_non_finite(tmp_path):
    run = runs.RunDir(tmp_path)
    (tmp_path / "tensorboard").mkdir()
    logger = runs.Logger(run, None)
    logger.log("eval", 0, {"infom": float("nan"), "psnr": float("inf"), "ok": 1.5})
    logger.close()
    record = json.loads(run.log.read_text(), parse_constant=lambda c: pytest.fail(f"non-strict {c}"))
    assert record == {"split": "eval", "step": 0, "infom": None, "psnr": None, "ok": 1.5}


# --- configs that are not what they claim -----------------------------------------------------------------------


def test_resume_of_an_empty_config_is_refused(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "config.yaml").write_text("")
    proc = run_cli("train", f"resume={tmp_path / 'd'}", cwd=tmp_path)
    one_line_error(proc, "config.yaml is empty")
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == ["config.yaml"]


@pytest.mark.parametrize("verb", ["eval", "report"])
def test_a_config_naming_an_unknown_model_is_one_line(run, verb):
    tree = yaml.safe_load((run / "config.yaml").read_text())
    tree["model"]["name"] = "no_such_model"
    (run / "config.yaml").write_text(yaml.safe_dump(tree))
    proc = run_cli(verb, str(run), cwd=run.parent)
    one_line_error(proc, "unknown model 'no_such_model'")


# --- checkpoints that are damaged -------------------------------------------------------------------------------


def _damage(path: Path, how: str) -> None:
    raw = bytearray(path.read_bytes())
    if how == "truncate":
        path.write_bytes(bytes(raw[: len(raw) // 2]))
    elif how == "header":
        raw[10:20] = b"\xff" * 10
        path.write_bytes(bytes(raw))
    elif how == "data":
        raw[-64:-32] = bytes(b ^ 0x5A for b in raw[-64:-32])
        path.write_bytes(bytes(raw))


@pytest.mark.parametrize("name, how", [("safetensors", "truncate"), ("safetensors", "header"),
                                       ("safetensors", "data"), ("json", "truncate")])
def test_resume_falls_back_to_the_newest_intact_checkpoint(run, name, how):
    bad = run / "checkpoints" / f"step_{STEPS}.{name}"
    _damage(bad, how)
    proc = run_cli("train", f"resume={run}", cwd=run.parent)
    assert proc.returncode == 0, proc.stderr
    assert f"step_{STEPS}.{name}" in proc.stderr and "warning" in proc.stderr
    tensors = load_file(run / "checkpoints" / f"step_{STEPS}.safetensors")  # made again from step 3
    assert all(np.isfinite(v).all() for v in tensors.values())
    assert (run / "checkpoints" / "step_3.safetensors").is_file()  # the good one was never rotated away


@pytest.mark.parametrize("verb", ["eval", "report"])
def test_eval_and_report_name_a_bad_checkpoint(run, verb):
    _damage(run / "checkpoints" / f"step_{STEPS}.safetensors", "data")
    proc = run_cli(verb, str(run), f"step={STEPS}" if verb == "eval" else f"--step={STEPS}", cwd=run.parent)
    assert f"step_{STEPS}.safetensors" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_bad_newest_checkpoint_with_a_good_older_one_evaluates_the_older(run):
    _damage(run / "checkpoints" / f"step_{STEPS}.safetensors", "header")
    proc = run_cli("eval", str(run), "--factorvae-votes", "0", "--dci-predictor", "forest", cwd=run.parent)
    assert proc.returncode == 0, proc.stderr
    assert f"step_{STEPS}.safetensors" in proc.stderr and "step 3" in proc.stdout


def test_eval_shows_each_stage_with_its_time(run):
    # It printed nothing for minutes of DCI trees; now every stage has a line of its own, warnings included.
    proc = run_cli("eval", str(run), "--factorvae-votes", "20", "--dci-predictor", "forest", cwd=run.parent)
    assert proc.returncode == 0, proc.stderr
    names = re.findall(r"^eval: (.+?) \.\.\. \d+\.\d s$", proc.stderr, flags=re.MULTILINE)
    assert names[0].startswith("encoding ") and names[1] == "InfoMEC", proc.stderr
    assert {"DCI (forest)", "FactorVAE score (20 votes)"} <= set(names), proc.stderr
    assert all(line.startswith(("eval: ", "latentquant: warning: ")) for line in proc.stderr.splitlines()
               if line.strip()), proc.stderr


# --- two writers, signals ---------------------------------------------------------------------------------------


def test_a_second_writer_is_refused_naming_the_first(run):
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom latentquant.lock import RunLock\n"
                               f"lock = RunLock({str(run)!r}); lock.acquire(); print('held', flush=True)\n"
                               "time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        before = digest(run)
        proc = run_cli("train", f"resume={run}", "train.steps=8", cwd=run.parent)
        one_line_error(proc, f"process {holder.pid}")
        assert digest(run) == before
    finally:
        holder.kill()
        holder.wait()
    proc = run_cli("train", f"resume={run}", "train.steps=8", "eval.figures=false", cwd=run.parent)
    assert proc.returncode == 0, proc.stderr  # the dead holder's lock is taken over


@pytest.mark.slow
def test_sigterm_stops_the_trainer_process_with_a_checkpoint_and_a_resume_hint(tmp_path, tiny_h5):
    run = tmp_path / "r"
    proc = subprocess.Popen([sys.executable, "-m", "latentquant.cli", "train", *TINY, f"data.path={tiny_h5}",
                             f"run_dir={run}", "train.steps=100000", "train.checkpoint_every=100000",
                             "eval.figures=false", "train.eval_every=100000"],
                            stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not any(r["split"] == "train" for r in runs.read_log(run)):
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "stopped by SIGTERM" in err and f"resume={run}" in err
    assert "Traceback" not in err
    step = runs.RunDir(run).last_checkpoint()
    assert step is not None and step > 0
    assert config.resume(run, ["train.steps=" + str(step + 2)]).train.steps == step + 2


@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGINT])
def test_sighup_and_sigint_stop_after_a_step_with_a_checkpoint(sig, tmp_path, tiny_h5, monkeypatch):
    """In this process: the signal arrives during the third step; training stops after it, checkpointed."""
    from latentquant.models import optim

    original, calls = optim.clip_gradients, {"n": 0}

    def signal_on_third(*a, **k):
        calls["n"] += 1
        if calls["n"] == 3:
            os.kill(os.getpid(), sig)
        original(*a, **k)

    monkeypatch.setattr(optim, "clip_gradients", signal_on_third)
    run = tmp_path / "r"
    before = signal.getsignal(sig)
    code = run_cli("train", *TINY, f"data.path={tiny_h5}", f"run_dir={run}", "train.steps=50",
                   "train.checkpoint_every=100", "eval.figures=false", cwd=tmp_path)
    assert code.returncode == 128 + sig, code.stderr
    assert f"stopped by {signal.Signals(sig).name} at step 3" in code.stderr and f"resume={run}" in code.stderr
    assert runs.RunDir(run).checkpoint_steps() == [3]
    assert signal.getsignal(sig) is before  # the loop's handler is gone once training ends
    # The stopped session's time record survives the resume, so the run's wall time covers both sessions.
    monkeypatch.setattr(optim, "clip_gradients", original)
    train_mod.train(config.resume(run, ["train.steps=5"]))
    sessions = [(r["step"], r["steps_run"]) for r in runs.read_log(run) if r["split"] == "time"]
    assert sessions == [(3, 3), (5, 2)]
    assert runs.time_spent(run) is not None


def test_a_resumed_run_logs_what_the_uninterrupted_run_logs(tmp_path, tiny_h5, monkeypatch):
    # checkpoint_every=5 and log_every=2: the logging window is open at every checkpoint
    args = [*TINY, f"data.path={tiny_h5}", "train.steps=12", "train.checkpoint_every=5", "train.log_every=2",
            "train.keep_checkpoints=5", "train.eval_every=100", "eval.figures=false"]
    train_mod.train(config.resolve([*args, f"run_dir={tmp_path / 'straight'}"]))
    from latentquant.models import optim

    original, calls = optim.clip_gradients, {"n": 0}

    def crash(*a, **k):
        calls["n"] += 1
        if calls["n"] == 7:  # step 7: resumed from step 5, whose logging window (step 5) was still open
            raise KeyboardInterrupt
        original(*a, **k)

    monkeypatch.setattr(optim, "clip_gradients", crash)
    with pytest.raises(KeyboardInterrupt):
        train_mod.train(config.resolve([*args, f"run_dir={tmp_path / 'killed'}"]))
    monkeypatch.setattr(optim, "clip_gradients", original)
    assert runs.RunDir(tmp_path / "killed").checkpoint_steps() == [5]
    train_mod.train(config.resume(tmp_path / "killed"))

    assert timeless_log(tmp_path / "straight") == timeless_log(tmp_path / "killed")


# --- disks ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("errno_name, needle", [("EROFS", "read-only"), ("ENOSPC", "disk is full")])
@pytest.mark.parametrize("verb", ["train", "eval"])
def test_read_only_or_full_disks_are_named_before_work_starts(run, verb, errno_name, needle, monkeypatch, capsys):
    import errno

    from latentquant import fsio

    def refuse(*a, **k):
        raise OSError(getattr(errno, errno_name), os.strerror(getattr(errno, errno_name)))

    monkeypatch.setattr(fsio, "atomic_write_bytes", refuse)
    args = ["train", f"resume={run}", "train.steps=8"] if verb == "train" else ["eval", str(run)]
    before = digest(run)
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("latentquant: error:") == 1
    assert digest(run) == before


# --- planted links ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("planted", [".report.html.tmp", ".metrics.jsonl.tmp", "report.html"])
def test_planted_links_never_redirect_a_write(run, planted, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    os.symlink(victim, run / planted)
    assert run_cli("report", str(run), cwd=run.parent).returncode == 0
    assert run_cli("train", f"resume={run}", "train.steps=7", "eval.figures=false", cwd=run.parent).returncode == 0
    assert victim.read_text() == "precious"


def test_the_report_embeds_only_regular_files_inside_the_run(run, tmp_path):
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"\x89PNG\r\n\x1a\n" + b"SECRET-MARKER" * 4)
    nmi = run / "eval" / f"step_{STEPS}" / "nmi.png"
    os.symlink(secret, nmi)
    proc = run_cli("report", str(run), cwd=run.parent)
    assert proc.returncode == 0, proc.stderr
    import base64

    page = (run / "report.html").read_text()
    assert base64.b64encode(b"SECRET-MARKER").decode()[:12] not in page
    assert secret.read_bytes().endswith(b"SECRET-MARKER")


def test_a_symlinked_metrics_log_is_refused(run, tmp_path):
    victim = tmp_path / "elsewhere.jsonl"
    victim.write_text("")
    (run / "metrics.jsonl").unlink()
    os.symlink(victim, run / "metrics.jsonl")
    proc = run_cli("train", f"resume={run}", "train.steps=7", cwd=run.parent)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert victim.read_text() == ""


def test_user_error_is_a_value_error():
    assert issubclass(UserError, ValueError)


# --- run directories written before this layout -----------------------------------------------------------------

# The model section every config.yaml had before hyperparameters were per model: every model's keys, null where
# the model's default applied.
OLD_MODEL_KEYS = {"num_values": 10, "learn_values": True, "lambda_quant": 0.01, "lambda_commit": 0.01,
                  "global_codebook": False, "beta": None, "lambda_mi": None, "lambda_tc": None, "lambda_dwkl": None,
                  "lambda_nonneg": None, "lambda_activity": None, "lambda_gp": None, "lambda_latent": None,
                  "lambda_value": None, "num_embeddings": 512, "embedding_dim": 64}


def _make_old(run: Path) -> None:
    """Rewrite a run directory as the previous version wrote it: the union config, single-prefix checkpoints
    without a checksum."""
    from safetensors.numpy import save_file

    tree = yaml.safe_load((run / "config.yaml").read_text())
    tree["model"].update(OLD_MODEL_KEYS)
    (run / "config.yaml").write_text(yaml.safe_dump(tree, sort_keys=False))
    for marker in (run / "checkpoints").glob("step_*.json"):
        meta = json.loads(marker.read_text())
        meta["optimizer"] = meta.pop("optimizer_model")
        for key in ("format", "file"):
            meta.pop(key, None)
        for key in ("rng", "window"):
            meta.pop(key, None)
        marker.write_text(json.dumps(meta))
        weights = marker.with_suffix(".safetensors")
        tensors = load_file(weights)
        save_file({k.replace("optimizer_model.", "optimizer.", 1): v for k, v in tensors.items()}, str(weights))


def test_a_run_directory_of_the_previous_version_loads_evaluates_reports_and_resumes(run):
    _make_old(run)
    cfg = runs.read_config(run)
    assert cfg.model.name == "qlae" and cfg.model.lambda_quant == 0.01 and "beta" not in cfg.model.hyper
    proc = run_cli("eval", str(run), "--factorvae-votes", "0", "--dci-predictor", "forest", cwd=run.parent)
    assert proc.returncode == 0, proc.stderr
    assert run_cli("report", str(run), cwd=run.parent).returncode == 0
    proc = run_cli("train", f"resume={run}", "train.steps=8", "eval.figures=false", cwd=run.parent)
    assert proc.returncode == 0, proc.stderr
    assert runs.final_metrics(run)["step"] == 8
