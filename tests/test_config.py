import re
import subprocess
import sys

import pytest

from latentquant import config
from latentquant.errors import UserError


def test_defaults_resolve_to_cpu_preset_and_qlae():
    cfg = config.resolve([])
    assert cfg.preset == "cpu" and cfg.model.name == "qlae"
    assert cfg.model.weight_decay == 0.1 and cfg.model.lambda_quant == 0.01 and cfg.model.lambda_commit == 0.01


def test_paper_preset_has_reference_values():
    cfg = config.resolve(["preset=paper"])
    assert cfg.train.steps == 200_000 and cfg.train.batch_size == 128 and cfg.train.lr == 1e-3
    assert cfg.model.widths == [32, 64, 128, 256] and cfg.model.blocks_per_stage == 3
    assert cfg.data.image_size == 64 and cfg.model.num_values == 10


def test_model_shorthand_brings_model_defaults():
    cfg = config.resolve(["model=ae"])
    assert cfg.model.name == "ae" and cfg.model.weight_decay == 0.0


def test_overrides_are_typed_and_win():
    cfg = config.resolve(["seed=3", "train.lr=0.002", "model.widths=[8,16]", "model.weight_decay=0", "data.path=x.h5"])
    assert cfg.seed == 3 and cfg.train.lr == 0.002 and cfg.model.widths == [8, 16]
    assert cfg.model.weight_decay == 0.0 and isinstance(cfg.model.weight_decay, float)
    assert cfg.data.path == "x.h5"


def test_exponent_without_dot_is_a_number():
    # YAML 1.1 would read 2e-4 as a string; users type it that way
    cfg = config.resolve(["train.lr=2e-4", "model.weight_decay=1E-3", "run_dir=runs/e5"])
    assert cfg.train.lr == 2e-4 and cfg.model.weight_decay == 1e-3 and cfg.run_dir == "runs/e5"


@pytest.mark.parametrize(
    "arg, message",
    [
        ("model.bogus=1", "model qlae takes no key 'model.bogus'; its own keys: model.num_values"),
        ("nothing.here=1", "unknown config key 'nothing.here'"),
        ("train.steps=abc", "train.steps expects an integer"),
        ("train.steps=1.5", "train.steps expects an integer"),
        ("train.lr=fast", "train.lr expects a number"),
        ("progress=maybe", "progress expects true or false"),
        ("model=nope", "unknown model 'nope'"),
        ("preset=huge", "unknown preset 'huge'"),
        ("noequals", "expected key=value"),
        ("train.batch_size=0", "train.batch_size must be positive"),
    ],
)
def test_bad_overrides_name_the_problem(arg, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(")):
        config.resolve([arg])


def test_round_trip_through_yaml(tmp_path):
    cfg = config.resolve(["model=ae", "seed=7", "data.path=/tmp/x.h5"])
    config.save(cfg, tmp_path / "config.yaml")
    again = config.load(tmp_path / "config.yaml")
    assert again == cfg


@pytest.mark.parametrize(
    "model, data, key, value",
    [("beta_vae", "mpi3d", "beta", 0.1), ("beta_vae", "falcor3d", "beta", 10.0),
     ("beta_tcvae", "shapes3d", "lambda_tc", 3.0), ("bio_ae", "isaac3d", "lambda_activity", 0.1),
     ("qlae", "mpi3d", "weight_decay", 0.001),
     ("qlae", "shapes3d", "weight_decay", 0.1), ("qlinfowgan_gp", "falcor3d", "weight_decay", 1e-4)],
)
def test_per_dataset_tuned_values(model, data, key, value):
    for preset in ("quick", "cpu", "paper"):
        cfg = config.resolve([f"model={model}", f"data={data}", f"preset={preset}"])
        assert getattr(cfg.model, key) == value
    assert getattr(config.resolve([f"model={model}", f"data={data}", f"model.{key}=0.5"]).model, key) == 0.5


def test_ae_keeps_no_decay_on_every_dataset():
    for data in ("shapes3d", "mpi3d", "falcor3d", "isaac3d"):
        assert config.resolve(["model=ae", f"data={data}"]).model.weight_decay == 0.0


def test_gans_get_their_step_budget_at_the_cpu_scale_only():
    gan, ae = config.resolve(["model=qlinfowgan_gp"]), config.resolve(["model=qlae"])
    assert gan.train.steps == 36_000 and ae.train.steps == 22_500  # 7,200 generator steps; see presets/cpu-gan.yaml
    assert gan.train.lr == 2e-4 and gan.train.batch_size == 64
    assert ae.train.compile and not gan.train.compile  # the gradient penalty's double backward does not compile
    assert config.resolve(["model=infowgan_gp", "preset=paper"]).train.steps == 200_000
    assert config.resolve(["model=infowgan_gp", "train.steps=10"]).train.steps == 10


def test_train_help_lists_every_shared_key_with_the_default_runs_value_without_importing_torch():
    code = ("import sys, contextlib, io\nfrom latentquant import cli\nout = io.StringIO()\n"
            "with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):\n"
            "    cli.main(['train', '--help'])\nprint(out.getvalue())\nprint('torch' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    text, torch_loaded = proc.stdout.rsplit("\n", 2)[0], proc.stdout.split()[-1]
    assert torch_loaded == "False"
    cfg = config.resolve([])
    listed = dict(re.findall(r"^  ([a-z_]+(?:\.[a-z_]+)?)\s+(\S.*)$", text, flags=re.MULTILINE))
    assert listed["train.steps"] == str(cfg.train.steps) and listed["data.image_size"] == str(cfg.data.image_size)
    for key in config.flatten(config.to_dict(config.Config())):
        if not key.startswith(("model.hyper", "changes")) and key.count(".") <= 1:
            assert key in listed, key


def test_the_quick_preset_is_the_cpu_presets_networks_on_a_short_run():
    quick, cpu = config.resolve(["preset=quick"]), config.resolve([])
    assert (quick.model.widths, quick.model.blocks_per_stage, quick.data.image_size) == \
        (cpu.model.widths, cpu.model.blocks_per_stage, cpu.data.image_size)
    assert quick.train.steps * quick.train.batch_size < cpu.train.steps * cpu.train.batch_size / 4
    assert quick.data.num_eval < cpu.data.num_eval and "quick" in config.preset_names()
    with pytest.raises(UserError, match="known: cpu, cpu-long, paper, quick"):
        config.resolve(["preset=fast"])


def test_cpu_long_is_the_default_at_twice_the_side_for_more_images_and_tuned_files_are_not_presets():
    cpu, long = config.resolve([]), config.resolve(["preset=cpu-long"])
    assert long.data.image_size == 2 * cpu.data.image_size and long.model.widths[:-1] == cpu.model.widths
    assert long.train.steps * long.train.batch_size > cpu.train.steps * cpu.train.batch_size
    assert (long.model.blocks_per_stage, long.model.dense, long.train.lr, long.train.compile) == (
        cpu.model.blocks_per_stage, cpu.model.dense, cpu.train.lr, cpu.train.compile)
    assert config.scale_presets() == ["cpu", "cpu-long", "paper", "quick"]
    with pytest.raises(UserError, match="unknown preset 'qlae-shapes3d'; known: cpu, cpu-long, paper, quick"):
        config.resolve(["preset=qlae-shapes3d"])
