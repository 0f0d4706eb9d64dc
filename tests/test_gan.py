"""InfoWGAN-GP and QLInfoWGAN-GP: losses, gradient penalty, optimizer partition, training loop and resume."""

import json
import subprocess
import sys

import pytest
import torch
from helpers import timeless_log
from safetensors.torch import load_file
from torch import nn

from latentquant import config, runs
from latentquant import train as train_mod
from latentquant.data.shapes3d import write_shapes3d_h5
from latentquant.models import ModelParts, build_model, get_spec, list_models, optim
from latentquant.models.infogan import InfoWGAN
from latentquant.models.optim import clip_gradients
from latentquant.modules.latents import UniformPrior
from latentquant.modules.networks import CriticEncoder, StyleDecoder, repeating_stack
from latentquant.modules.quantizers import ScalarQuantizer

PARTS = ModelParts(in_channels=3, image_size=16, stack=repeating_stack((8, 16), per_stage=1), dense=(32,))


def tiny_images(n=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    pos = torch.randint(2, 14, (n, 2), generator=g)
    yy, xx = torch.meshgrid(torch.arange(16), torch.arange(16), indexing="ij")
    blob = torch.exp(-((yy[None] - pos[:, 0, None, None]) ** 2 + (xx[None] - pos[:, 1, None, None]) ** 2) / 6.0)
    return torch.stack([blob, 1 - blob, 0.5 * blob], dim=1)


def make(name, seed=0, lr=2e-4, **hyper):
    torch.manual_seed(seed)
    model = build_model(name, PARTS, 4, **hyper)
    return model, model.configure_optimizers(lr=lr, weight_decay=get_spec(name).weight_decay)


def step(model, opts, x, rng, generator=True):
    out = {}
    for name, loss_fn in (("encoder", lambda: model.critic_loss(x, rng)),
                          ("generator", lambda: model.generator_loss(x.shape[0], rng))):
        if name == "generator" and not generator:
            break
        loss, terms = loss_fn()
        opts[name].zero_grad(set_to_none=True)
        loss.backward()
        clip_gradients(opts[name], 1.0)
        opts[name].step()
        out[name] = terms
    return out


def test_models_build_with_reference_defaults():
    gans = {n for n in list_models() if get_spec(n).family == "gan"}
    assert gans == {"infowgan_gp", "qlinfowgan_gp", "qlinfowgan_gp_no_wd"}
    plain, _ = make("infowgan_gp")
    ql, _ = make("qlinfowgan_gp")
    assert isinstance(plain.latent, UniformPrior) and isinstance(ql.latent, ScalarQuantizer)
    assert isinstance(plain.encoder, CriticEncoder) and isinstance(plain.generator, StyleDecoder)
    assert plain.weights == {"value": 1.0, "gradient_penalty": 10.0, "latent": 200.0}
    assert ql.weights == {**plain.weights, "quantization": 0.01, "commitment": 0.01}
    wd = {n: get_spec(n).weight_decay for n in gans}
    assert wd == {"infowgan_gp": 1e-4, "qlinfowgan_gp": 1e-3, "qlinfowgan_gp_no_wd": 0.0}
    z = plain.sample_prior(1000, torch.Generator().manual_seed(0))
    assert z.min() >= 0 and z.max() < 1 and abs(float(z.mean()) - 0.5) < 0.05
    zq = ql.sample_prior(50, torch.Generator().manual_seed(0))
    assert all(set(zq[:, j].tolist()) <= set(ql.latent.codebook(j).tolist()) for j in range(4))
    cfg = config.resolve(["model=qlinfowgan_gp"])
    assert (cfg.train.lr, cfg.train.batch_size, cfg.model.weight_decay, cfg.model.lambda_gp) == (2e-4, 64, 1e-3, 10.0)


class LinearCritic(nn.Module):
    """V(x) = <w, x>: its input gradient is w everywhere, so the penalty is (‖w‖ − 1)²."""

    def __init__(self, w):
        super().__init__()
        self.w = nn.Parameter(w)

    def critique(self, x):
        return x.flatten(1)[:, :4], x.flatten(1) @ self.w


def test_gradient_penalty_of_linear_critic():
    w = torch.randn(3 * 16 * 16, generator=torch.Generator().manual_seed(0))
    x = torch.rand(5, 3, 16, 16)
    for scale, expected in ((1.0, 0.0), (3.0, 4.0), (0.5, 0.25)):
        model = InfoWGAN(LinearCritic(scale * w / w.norm()), UniformPrior(4), nn.Identity(), {})
        assert model.gradient_penalty(x).item() == pytest.approx(expected, abs=1e-5)


def test_gradient_penalty_is_double_backprop():
    """d(penalty)/d(critic weight) from autograd matches a finite difference of the penalty itself."""
    model, _ = make("infowgan_gp")
    model.double()
    x = torch.rand(4, 3, 16, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    weight = model.encoder.value.weight
    model.gradient_penalty(x).backward()
    analytic = weight.grad[0, :3].clone()
    h = 1e-6
    for i in range(3):
        weight.data[0, i] += h
        up = model.gradient_penalty(x).item()
        weight.data[0, i] -= 2 * h
        down = model.gradient_penalty(x).item()
        weight.data[0, i] += h
        assert (up - down) / (2 * h) == pytest.approx(float(analytic[i]), rel=1e-4, abs=1e-8)
    assert model.encoder.trunk[0].conv.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("name", ["infowgan_gp", "qlinfowgan_gp"])
def test_steps_change_parameters_and_keep_losses_finite(name):
    model, opts = make(name)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    rng = torch.Generator().manual_seed(0)
    for _ in range(3):
        terms = step(model, opts, tiny_images(), rng)
        for part in terms.values():
            assert all(torch.isfinite(v) for v in part.values())
    for n, p in model.named_parameters():
        # The critic's output bias cancels in V(fake) - V(real) and does not enter the penalty.
        assert torch.equal(before[n], p) == (n == "encoder.value.bias"), n


@pytest.mark.parametrize("name", ["infowgan_gp", "qlinfowgan_gp"])
def test_latent_loss_falls(name):
    # Adversarial terms off and a generator step every iteration: in 30 steps a tiny GAN barely moves its
    # samples, so this isolates the info term (z -> generator -> encoder -> ẑ) that both steps train.
    model, opts = make(name, lr=1e-3, lambda_value=0.0, lambda_gp=0.0)
    rng = torch.Generator().manual_seed(0)
    losses = [float(step(model, opts, tiny_images(), rng)["encoder"]["latent"]) for _ in range(30)]
    with torch.no_grad():
        prior_variance = model.sample_prior(10_000, torch.Generator().manual_seed(1)).var(0).mean().item()
    assert sum(losses[-5:]) / 5 < 0.6 * min(losses[0], prior_variance)


def test_codebook_learns_only_in_the_generator_step():
    model, opts = make("qlinfowgan_gp")
    rng = torch.Generator().manual_seed(0)
    values = model.latent.values.detach().clone()
    step(model, opts, tiny_images(), rng, generator=False)
    assert torch.equal(model.latent.values, values)
    # Without the quantization and commitment terms the codebook still gets gradient: through the prior sample.
    bare, _ = make("qlinfowgan_gp", lambda_quant=0.0, lambda_commit=0.0)
    bare.generator_loss(8, rng)[0].backward()
    assert bare.latent.values.grad.abs().sum() > 0
    step(model, opts, tiny_images(), rng)
    assert not torch.equal(model.latent.values, values)


def test_optimizers_own_disjoint_parts_with_reference_partition():
    model, opts = make("qlinfowgan_gp")
    owned = {name: {id(p) for g in opt.param_groups for p in g["params"]} for name, opt in opts.items()}
    assert not owned["encoder"] & owned["generator"]
    names = {id(p): n for n, p in model.named_parameters()}
    assert owned["encoder"] | owned["generator"] == set(names)
    assert all(names[i].startswith("encoder.") for i in owned["encoder"])
    groups = {(o, g["name"]): {names[id(p)] for p in g["params"]} for o, opt in opts.items() for g in opt.param_groups}
    assert "encoder.value.weight" in groups["encoder", "regularized"]
    assert "encoder.value.bias" in groups["encoder", "unregularized"]
    assert groups["generator", "unregularized"] >= {"latent.values"}
    assert "generator.constant" in groups["generator", "regularized"]
    for opt in opts.values():
        for g in opt.param_groups:
            assert g["betas"] == (0.0, 0.9) and g["lr"] == 2e-4
            assert g["clip"] == (g["name"] == "regularized") and (g["weight_decay"] > 0) == g["clip"]


TINY = ["model=qlinfowgan_gp", "model.widths=[8,16]", "model.blocks_per_stage=1", "model.dense=[32]",
        "data.image_size=16", "train.batch_size=16", "data.num_eval=64", "eval.batch_size=64", "progress=false",
        "train.threads=1", "train.log_every=5", "train.eval_every=100"]


@pytest.fixture(scope="module")
def tiny_h5(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "3dshapes-tiny.h5"
    write_shapes3d_h5(path, image_size=16, subset=128, seed=0)
    return path


@pytest.mark.slow
def test_cli_run_writes_everything(tiny_h5, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "latentquant.cli", "train", *TINY, f"data.path={tiny_h5}",
                           f"run_dir={tmp_path / 'run'}", "train.steps=10"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    run = tmp_path / "run"
    for name in ("samples.png", "traversals.png", "nmi.png", "metrics.json"):
        assert (run / "eval" / "step_10" / name).is_file(), name
    tensors = load_file(run / "checkpoints" / "step_10.safetensors")
    assert any(k.startswith("optimizer_encoder.") for k in tensors)
    assert any(k.startswith("optimizer_generator.") for k in tensors)
    records = [json.loads(ln) for ln in (run / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if r["split"] == "train"]
    assert [r["step"] for r in train] == [5, 10]
    assert all("critic/gradient_penalty" in r and "generator/loss" in r for r in train)
    assert "InfoM" in proc.stdout


class Crash(Exception):
    pass


def test_killed_run_resumes_to_the_same_end(tiny_h5, tmp_path, monkeypatch):
    # log_every divides checkpoint_every, so a resumed run's logging windows are the uninterrupted run's
    steps = [*TINY, f"data.path={tiny_h5}", "train.steps=12", "train.checkpoint_every=4", "train.keep_checkpoints=5",
             "train.log_every=4", "eval.figures=false"]
    train_mod.train(config.resolve([*steps, f"run_dir={tmp_path / 'straight'}"]))

    calls = {"n": 0}
    original = optim.clip_gradients

    def crash(optimizer, clip):
        calls["n"] += 1
        if calls["n"] == 9:  # the critic step of iteration 8: after the step-4 checkpoint and a generator step
            raise Crash()
        original(optimizer, clip)

    monkeypatch.setattr(optim, "clip_gradients", crash)
    with pytest.raises(Crash):
        train_mod.train(config.resolve([*steps, f"run_dir={tmp_path / 'killed'}"]))
    monkeypatch.setattr(optim, "clip_gradients", original)
    assert runs.RunDir(tmp_path / "killed").checkpoint_steps() == [4]

    train_mod.train(config.resume(tmp_path / "killed"))
    a = load_file(tmp_path / "straight" / "checkpoints" / "step_12.safetensors")
    b = load_file(tmp_path / "killed" / "checkpoints" / "step_12.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k

    assert timeless_log(tmp_path / "straight") == timeless_log(tmp_path / "killed")
