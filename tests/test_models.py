"""One suite over every registered model (GANs included) for the model contract: configure_optimizers,
train_step, eval_terms and the figure hooks; then model-specific checks of the autoencoders.

GAN-specific checks (the gradient penalty, which optimizer owns what) live in test_gan.py; the same models
through the real training loop, with a restart, in test_registry.py.
"""

import numpy as np
import pytest
import torch
from helpers import TINY_PARTS, tiny_data, tiny_images

from latentquant.checkpoint import load_checkpoint, save_checkpoint
from latentquant.config import EvalConfig
from latentquant.evaluate import evaluate
from latentquant.models import build_model, get_spec, list_models
from latentquant.models.optim import clip_gradients

TINY = TINY_PARTS


def make(name, seed=0, lr=3e-3):
    torch.manual_seed(seed)
    model = build_model(name, TINY, 4)
    return model, model.configure_optimizers(lr=lr, weight_decay=get_spec(name).weight_decay)


def run_steps(model, optimizers, x, steps, start=0, seed=0):
    rng = torch.Generator().manual_seed(seed)
    return [model.train_step(x, s, optimizers, clip=1.0, rng=rng) for s in range(start, start + steps)]


# The term each family's step must lower in a few dozen steps on tiny data.
FALLING = {name: "critic/latent" if get_spec(name).family == "gan" else "bce" for name in list_models()}


@pytest.mark.parametrize("name", list_models())
def test_train_step_logs_finite_terms_and_lowers_its_loss(name):
    model, opts = make(name)
    x = tiny_images()
    logs = run_steps(model, opts, x, 60)
    assert all(torch.isfinite(v) for log in logs for v in log.values())
    losses = [float(log[FALLING[name]]) for log in logs]
    assert sum(losses[-5:]) / 5 < losses[0] - 0.02, losses[::10]


@pytest.mark.parametrize("name", list_models())
def test_every_trainable_parameter_gets_gradient(name):
    model, opts = make(name)
    # Five steps: a GAN's fifth iteration is also a generator step, so both of its optimizers have stepped.
    run_steps(model, opts, tiny_images(8), 5)
    for pname, p in model.named_parameters():
        if p.requires_grad and pname != "encoder.value.bias":  # cancels in V(fake) - V(real); test_gan.py
            assert p.grad is not None and torch.count_nonzero(p.grad) > 0, pname


@pytest.mark.parametrize("name", list_models())
def test_partitions_follow_reference(name):
    model, opts = make(name)
    names = {id(p): n for n, p in model.named_parameters()}
    owned = [id(p) for opt in opts.values() for g in opt.param_groups for p in g["params"]]
    assert sorted(owned) == sorted(id(p) for p in model.parameters() if p.requires_grad)  # each once
    for opt in opts.values():
        groups = {g["name"]: g for g in opt.param_groups}
        plain = {names[id(p)] for p in groups["unregularized"]["params"]}
        decayed = {names[id(p)] for p in groups["regularized"]["params"]}
        assert all(n.endswith(".bias") or n.startswith("latent.") for n in plain)
        assert all(not n.endswith(".bias") and not n.startswith("latent.") for n in decayed)
        assert groups["unregularized"]["weight_decay"] == 0.0
        assert groups["regularized"]["weight_decay"] == get_spec(name).weight_decay
    decayed_all = {names[id(p)] for o in opts.values() for g in o.param_groups if g["clip"] for p in g["params"]}
    assert {"decoder.constant", "generator.constant"} & decayed_all


@pytest.mark.parametrize("name", list_models())
def test_checkpoint_round_trip_continues_identically(name, tmp_path):
    model, opts = make(name)
    x = tiny_images(8)
    run_steps(model, opts, x, 3)
    save_checkpoint(tmp_path, 3, model, opts, {"note": "x"})
    other, other_opts = make(name, seed=1)
    meta = load_checkpoint(tmp_path, other, other_opts)
    assert meta["step"] == 3 and meta["note"] == "x"
    with torch.no_grad():
        model.eval(), other.eval()
        assert torch.equal(model(x).logits, other(x).logits)
        model.train(), other.train()
    for m, o in ((model, opts), (other, other_opts)):  # same noise for the sampling models
        torch.manual_seed(5)
        run_steps(m, o, x, 2, start=3, seed=9)
    for (n, p), q in zip(model.named_parameters(), other.parameters(), strict=True):
        assert torch.equal(p, q), n


@pytest.mark.parametrize("name", list_models())
def test_every_model_evaluates_with_every_figure_its_hooks_allow(name, tmp_path):
    data = tiny_data(40)
    model, _ = make(name)
    metrics = evaluate(model, data, np.arange(40), EvalConfig(batch_size=16), step=0, out_dir=tmp_path)
    assert all(np.isfinite(metrics[k]) for k in ("infom", "infoe", "psnr"))
    assert all(k.startswith("val/") or not isinstance(v, float) or np.isfinite(v) for k, v in metrics.items())
    assert (tmp_path / "metrics.json").is_file() and (tmp_path / "nmi.png").is_file()
    assert (tmp_path / "reconstructions.png").is_file()
    sweepable = model.latent.sweep(0, np.zeros((2, 4)), 3) is not None
    assert (tmp_path / "traversals.png").is_file() == sweepable
    assert (tmp_path / "samples.png").is_file() == (model.samples(2, torch.Generator()) is not None)
    assert sweepable or name.startswith("vqvae")
    assert (model.samples(2, torch.Generator()) is not None) == (get_spec(name).family == "gan")


def test_unknown_hyperparameter_is_refused_and_names_the_model_keys():
    with pytest.raises(TypeError, match="beta"):
        build_model("qlae", TINY, 4, beta=5.0)
    assert set(get_spec("qlae").hyperparameters) == {"num_values", "learn_values", "lambda_quant", "lambda_commit",
                                                     "global_codebook", "klm", "nhp", "tc"}  # + the composable terms
    assert "num_values" not in get_spec("infowgan_gp").hyperparameters  # fixed: the unquantized GAN has none


def test_qlae_codebooks_learn_and_decay_spares_them():
    model, opts = make("qlae")
    before = model.latent.values.detach().clone()
    run_steps(model, opts, tiny_images(), 20)
    assert not torch.equal(before, model.latent.values.detach())
    assert model.weights == {"bce": 1.0, "quantization": 0.01, "commitment": 0.01}


def test_clip_is_elementwise_and_only_on_regularized_group():
    model, opts = make("qlae")
    opt = opts["model"]
    for p in model.parameters():
        p.grad = torch.full_like(p, 5.0)
    clip_gradients(opt, 1.0)
    for g in opt.param_groups:
        for p in g["params"]:
            assert torch.all(p.grad == (1.0 if g["clip"] else 5.0))


def test_weight_decay_is_decoupled_adamw():
    model, opts = make("qlae")
    opt = opts["model"]
    assert isinstance(opt, torch.optim.AdamW)
    groups = {g["name"]: g for g in opt.param_groups}
    assert groups["regularized"]["weight_decay"] == 0.1


def test_model_specific_objectives():
    pixels = 3 * 16 * 16
    assert build_model("beta_vae", TINY, 4, beta=3.0).weights["kl"] == pytest.approx(3.0 * 4 / pixels)
    tc = build_model("beta_tcvae", TINY, 4, lambda_tc=6.0)
    assert tc.weights["total_correlation"] == pytest.approx(6.0 / pixels) and tc.weights["kl"] == 0.0
    assert set(build_model("bio_ae", TINY, 4).weights) == {"bce", "nonnegativity", "activity"}
    vq = build_model("vqvae", TINY, 4)
    assert vq.latent.embeddings.shape == (512, 64) and vq.weights["commitment"] == 0.25
    assert get_spec("vqvae_wd").weight_decay == 0.01 and get_spec("qlae_no_wd").weight_decay == 0
    assert not build_model("qlae_fixed", TINY, 4).latent.values.requires_grad
    assert build_model("qlae_global", TINY, 4).latent.values.shape == (1, 10)


def test_vae_decodes_the_mean_in_eval_mode_and_samples_in_training():
    torch.manual_seed(0)
    model = build_model("beta_vae", TINY, 4)
    x = tiny_images(4)
    model.eval()
    with torch.no_grad():
        a, b = model(x).logits, model(x).logits
    assert torch.equal(a, b)
    model.train()
    with torch.no_grad():
        c, d = model(x).logits, model(x).logits
    assert not torch.equal(c, d)


def test_tcvae_terms_sum_to_the_kl_estimate():
    """MI + TC + DWKL telescopes to log q(z|x) - log p(z), a one-sample estimate of the KL."""
    torch.manual_seed(0)
    latent = build_model("beta_tcvae", TINY, 4).latent
    h = torch.randn(64, 8)
    out = latent(h)
    mu, sigma = latent.posterior(h)
    z = out.z_hat
    log_q = (-0.5 * (torch.log(2 * torch.pi * sigma**2) + ((z - mu) / sigma) ** 2)).sum(1)
    log_p = (-0.5 * (torch.log(torch.tensor(2 * torch.pi)) + z**2)).sum(1)
    total = out.losses["mutual_information"] + out.losses["total_correlation"] + out.losses["dimension_kl"]
    assert torch.allclose(total, (log_q - log_p).mean(), atol=1e-4)




def test_a_collapsed_representation_is_scored_undefined_with_the_suite_too(tmp_path):
    # A run whose every latent collapsed to a constant (QLAE + KLM + NHP at lr 3e-3 did) must end with its
    # metrics undefined, not with a traceback from the suite after the whole training.
    model, _ = make("qlae")
    with torch.no_grad():
        for p in model.encoder.parameters():
            p.zero_()
    with pytest.warns(UserWarning, match="no active latent"):
        metrics = evaluate(model, tiny_data(40), np.arange(40), EvalConfig(batch_size=16), step=0,
                           out_dir=tmp_path, suite=True)
    assert metrics["active_latents"] == 0 and np.isnan(metrics["infom"]) and "dci_d" not in metrics
    assert (tmp_path / "metrics.json").is_file()
