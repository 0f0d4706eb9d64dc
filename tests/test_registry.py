"""One suite over every registered model, AE family and GANs alike, through the real training loop.

Each model builds from the config, trains a few steps on a tiny Shapes3D-format file with a falling loss,
evaluates, and a run restarted from its mid-way checkpoint ends bit-identical to the uninterrupted run.
Model-specific checks (partitions, objectives, the gradient penalty) live in test_models.py / test_gan.py.
"""

import shutil

import numpy as np
import pytest
import torch
from helpers import TINY
from safetensors.numpy import load_file

from latentquant import config, runs
from latentquant import train as train_mod
from latentquant.build import load_data, make_model
from latentquant.checkpoint import load_checkpoint
from latentquant.models import get_spec, list_models

STEPS = 24
# The loss that must fall: reconstruction for autoencoders; for GANs the latent-prediction term, which both
# of their steps train (the adversarial terms need far more than 24 steps to mean anything).
FALLING = {name: "critic/latent" if get_spec(name).family == "gan" else "bce" for name in list_models()}


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_h5):
    """name -> run directory of a finished tiny run (trained once per module, shared by the tests)."""
    root = tmp_path_factory.mktemp("registry")
    cache: dict[str, object] = {}

    def get(name):
        if name not in cache:
            run = root / name
            cfg = config.resolve([*TINY, f"data.path={tiny_h5}", f"model={name}", f"run_dir={run}",
                                  f"train.steps={STEPS}", "train.checkpoint_every=12", "train.keep_checkpoints=3",
                                  "train.log_every=4", "train.eval_every=100", "train.lr=2e-3", "eval.figures=false"])
            train_mod.train(cfg)
            cache[name] = run
        return cache[name]

    return get


def test_registry_names_every_model():
    assert {"ae", "beta_vae", "beta_tcvae", "bio_ae", "vqvae", "vqvae_wd", "qlae", "qlae_global", "qlae_no_wd",
            "qlae_fixed", "infowgan_gp", "qlinfowgan_gp", "qlinfowgan_gp_no_wd", "factor_vae", "factorqvae",
            "qvae"} <= set(list_models())


@pytest.mark.parametrize("name", list_models())
def test_trains_with_falling_loss_and_evaluates(name, trained):
    run = trained(name)
    log = runs.read_log(run)
    losses = [r[FALLING[name]] for r in log if r["split"] == "train"]
    assert len(losses) == STEPS // 4 and all(np.isfinite(losses))
    assert np.mean(losses[-2:]) < losses[0], losses
    final = runs.final_metrics(run)
    for key in ("infom", "infoe", "infoc", "psnr"):
        assert np.isfinite(final[key]), key
    assert 0.0 <= final["infom"] <= 1.0 and final["active_latents"] >= 1


@pytest.mark.parametrize("name", list_models())
def test_restart_from_checkpoint_ends_identical(name, trained, tmp_path):
    straight = trained(name)
    restarted = tmp_path / "restarted"
    shutil.copytree(straight, restarted)
    for suffix in ("safetensors", "json"):
        (restarted / "checkpoints" / f"step_{STEPS}.{suffix}").unlink()
    assert runs.last_checkpoint(restarted) == STEPS // 2 and runs.run_state(restarted) == "finished"
    train_mod.train(config.resume(restarted))
    a = load_file(straight / "checkpoints" / f"step_{STEPS}.safetensors")
    b = load_file(restarted / "checkpoints" / f"step_{STEPS}.safetensors")
    assert a.keys() == b.keys() and any(k.startswith("model.") for k in a)
    for key in a:
        assert np.array_equal(a[key], b[key]), key
    # reloading the checkpoint into a fresh model gives the same outputs as the model that wrote it
    cfg = runs.read_config(straight)
    data = load_data(cfg)
    x = torch.from_numpy(data.images[:8]).permute(0, 3, 1, 2).float() / 255
    outputs = []
    for run_dir in (straight, restarted):
        torch.manual_seed(123)  # a different init each time would hide a partial load
        model = make_model(runs.read_config(run_dir), data)
        load_checkpoint(run_dir / "checkpoints", model)
        model.eval()
        with torch.no_grad():
            z = model.encode(x).z_hat
            outputs.append((z, model.decode(z)))
        torch.manual_seed(7)
    assert torch.equal(outputs[0][0], outputs[1][0]) and torch.equal(outputs[0][1], outputs[1][1])
