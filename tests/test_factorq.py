"""Oracle checks of FactorVAE / FactorQVAE / QVAE's parts: the TC discriminator, the relaxed codebook, who
optimizes what. The shared contract (falling loss, exact resume, evaluation, figures) is in test_models.py."""

import math

import numpy as np
import pytest
import torch
from helpers import TINY_PARTS, tiny_data, tiny_images

from latentquant import config
from latentquant.config import EvalConfig
from latentquant.evaluate import evaluate, protocol_representation
from latentquant.metrics.protocols import get_protocol
from latentquant.models import build_model, get_spec
from latentquant.modules.discriminator import TotalCorrelationDiscriminator, permute_dims
from latentquant.modules.quantizers import GumbelScalarQuantizer


def correlated(n: int, rho: float, g: torch.Generator) -> torch.Tensor:
    """(n, 2) standard Gaussian codes with correlation rho: TC = -log(1 - rho^2) / 2 nats."""
    a = torch.randn(n, 2, generator=g)
    return torch.stack([a[:, 0], rho * a[:, 0] + math.sqrt(1 - rho**2) * a[:, 1]], dim=1)


def trained_estimate(rho: float, steps: int = 150) -> float:
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    disc = TotalCorrelationDiscriminator(2, width=32, layers=4)
    opt = torch.optim.Adam(disc.parameters(), lr=3e-3)
    for _ in range(steps):
        z = correlated(512, rho, g)
        loss = disc.loss(z[:256], permute_dims(z[256:], g))  # the batch split the models use
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return float(disc.total_correlation(correlated(4096, rho, g)))


def test_tc_estimate_rises_with_the_correlation_of_the_codes():
    # Measured: 0.009, 0.144, 0.688 against the true 0, 0.144, 0.830 nats (a small net, 150 steps).
    estimates = [trained_estimate(rho) for rho in (0.0, 0.5, 0.9)]
    truth = [-0.5 * math.log(1 - rho**2) for rho in (0.0, 0.5, 0.9)]
    assert abs(estimates[0]) < 0.1, estimates
    assert estimates[0] < estimates[1] < estimates[2], estimates
    assert estimates[2] > 0.5 * truth[2] and estimates[2] > estimates[0] + 0.4, estimates


def test_permute_dims_shuffles_each_dimension_on_its_own():
    codes = torch.arange(40.0).view(10, 4, 1).expand(10, 4, 3).clone()
    out = permute_dims(codes, torch.Generator().manual_seed(0))
    for j in range(4):  # each column is a permutation of itself, whole one-hot vectors kept together
        assert sorted(out[:, j, 0].tolist()) == sorted(codes[:, j, 0].tolist())
        assert torch.equal(out[:, j, 0:1].expand(10, 3), out[:, j])
    assert not all(torch.equal(out[:, 0, 0].argsort(), out[:, j, 0].argsort()) for j in range(1, 4))


def test_gumbel_codes_are_relaxed_one_hots_in_training_and_codebook_values_in_evaluation():
    torch.manual_seed(0)
    q = GumbelScalarQuantizer(5, 64)
    z = torch.randn(32, 5)
    q.train()
    out, codes = q.forward_with_codes(z)
    assert codes.shape == (32, 5, 64) and torch.allclose(codes.sum(-1), torch.ones(32, 5))
    assert (codes > 0).all() and torch.allclose(out.z_hat, codes @ q.values)
    q.eval()
    out, codes = q.forward_with_codes(z)
    assert torch.equal(out.z_hat, q.values[out.indices]) and torch.equal(out.representation, out.z_hat)
    assert torch.equal(out.indices, (z[..., None] - q.values).abs().argmin(-1))
    assert torch.equal(codes.argmax(-1), out.indices) and torch.equal(codes.sum(-1), torch.ones(32, 5))
    assert set(out.z_hat.flatten().tolist()) <= set(q.values.tolist())
    assert q.codebook_sizes() == [64] * 5 and q.discrete


def test_kl_to_the_uniform_prior_is_zero_only_for_uniform_scores():
    q = GumbelScalarQuantizer(3, 8)
    with torch.no_grad():
        q.values.fill_(0.25)  # every code at the same distance: softmax is uniform
    assert float(q(torch.randn(4, 3)).losses["kl"].detach()) == pytest.approx(0.0, abs=1e-6)
    with torch.no_grad():
        q.values.copy_(torch.linspace(-3, 3, 8))
    assert float(q(torch.full((4, 3), 3.0)).losses["kl"].detach()) > 0.5


def test_temperature_follows_the_schedule():
    model = build_model("factorqvae", TINY_PARTS, 4)
    model.set_temperature(100_000)
    assert float(model.latent.temperature) == pytest.approx(math.exp(-1.0))  # 0.37 at 100k, as the spec says


@pytest.mark.parametrize("name", ["factorqvae", "qvae"])
def test_gradients_reach_the_codebook_and_the_encoder(name):
    torch.manual_seed(0)
    model = build_model(name, TINY_PARTS, 4)
    loss, _, _ = model.loss_and_codes(tiny_images(8))
    loss.backward()
    assert torch.count_nonzero(model.latent.values.grad) > 0
    assert all(p.grad is not None and torch.count_nonzero(p.grad) > 0 for p in model.encoder.parameters())


WITH_DISCRIMINATOR = [("factor_vae", {}), ("factorqvae", {}), ("qlae", {"tc": 1.0}), ("qvae", {"tc": 1e-4})]


@pytest.mark.parametrize(("name", "terms"), WITH_DISCRIMINATOR[1:])
def test_the_tc_penalty_does_not_train_the_discriminator(name, terms):
    torch.manual_seed(0)
    model = build_model(name, TINY_PARTS, 4, **terms)
    loss, terms, _ = model.loss_and_codes(tiny_images(8))
    loss.backward()
    assert "total_correlation" in terms
    assert all(p.grad is None for p in model.discriminator.parameters())


@pytest.mark.parametrize(("name", "terms"), WITH_DISCRIMINATOR)
def test_the_discriminator_has_its_own_optimizer(name, terms):
    model = build_model(name, TINY_PARTS, 4, **terms)
    opts = model.configure_optimizers(lr=1e-3, weight_decay=get_spec(name).weight_decay)
    assert set(opts) == {"model", "discriminator"}
    assert {g["weight_decay"] for g in opts["model"].param_groups} <= {0.0, get_spec(name).weight_decay}
    disc = {id(p) for p in model.discriminator.parameters()}
    main = {id(p) for g in opts["model"].param_groups for p in g["params"]}
    own = {id(p) for g in opts["discriminator"].param_groups for p in g["params"]}
    assert own == disc and not (main & disc)
    assert main == {id(p) for n, p in model.named_parameters() if not n.startswith("discriminator.")}
    assert {g["weight_decay"] for g in opts["discriminator"].param_groups} == {0.0}  # QLAE's 0.1 is not its
    betas = {g["betas"] for g in opts["discriminator"].param_groups}
    assert betas == ({(0.5, 0.9)} if name == "factor_vae" else {(0.9, 0.999)})


@pytest.mark.parametrize(("name", "terms"), WITH_DISCRIMINATOR[1:3])
def test_a_step_moves_the_discriminator_only_through_its_own_optimizer(name, terms):
    torch.manual_seed(0)
    model = build_model(name, TINY_PARTS, 4, **terms)
    opts = model.configure_optimizers(lr=1e-3, weight_decay=0.0)
    before = [p.detach().clone() for p in model.discriminator.parameters()]
    opts["model"].step = lambda *a, **k: None  # the model optimizer stepping nothing ...
    model.train_step(tiny_images(8), 0, opts, clip=1.0, rng=torch.Generator().manual_seed(0))
    assert all(not torch.equal(b, p) for b, p in zip(before, model.discriminator.parameters(), strict=True))
    assert opts["discriminator"].state  # ... the discriminator still moved: its optimizer has state


def test_weights_and_registrations():
    pixels = 3 * 16 * 16
    fvae = build_model("factor_vae", TINY_PARTS, 4, gamma=6.4)
    assert fvae.weights == pytest.approx({"bce": 1.0, "kl": 4 / pixels, "total_correlation": 6.4 / pixels})
    fq = build_model("factorqvae", TINY_PARTS, 4)
    assert fq.weights == {"bce": 0.0, "mse": 1.0, "kl": 1e-3, "total_correlation": 1e-4}
    assert fq.latent.values.shape == (64,) and fq.discriminator.num_inputs == 4 * 64
    linears = [m for m in fq.discriminator.modules() if isinstance(m, torch.nn.Linear)]
    assert len(linears) == 6 and linears[0].out_features == 1000 and linears[-1].out_features == 2
    qvae = build_model("qvae", TINY_PARTS, 4)
    assert qvae.discriminator is None and "total_correlation" not in qvae.weights
    assert "gamma" not in get_spec("qvae").hyperparameters and "tc" not in get_spec("factorqvae").hyperparameters
    assert "tc" not in get_spec("factor_vae").hyperparameters and "tc" in get_spec("qvae").hyperparameters
    assert not any("with_tc" in get_spec(m).hyperparameters for m in ("qvae", "factorqvae"))
    with pytest.raises(ValueError, match="batch of 2"):
        fq.train_step(tiny_images(1), 0, fq.configure_optimizers(lr=1e-3, weight_decay=0.0), clip=1.0,
                      rng=torch.Generator())


@pytest.mark.parametrize(("model", "data", "beta_kl", "gamma"),
                         [("factorqvae", "shapes3d", 1e-3, 1e-4), ("factorqvae", "isaac3d", 5e-5, 5e-5),
                          ("factorqvae", "mpi3d", 5e-5, 1e-6), ("qvae", "shapes3d", 1e-3, None),
                          ("qvae", "mpi3d", 5e-5, None)])
def test_per_dataset_weights_are_the_authors(model, data, beta_kl, gamma):
    cfg = config.resolve([f"model={model}", f"data={data}"])
    assert cfg.model.beta_kl == beta_kl and getattr(cfg.model, "gamma", None) == gamma
    assert config.resolve([f"model={model}", f"data={data}", "model.beta_kl=0.5"]).model.beta_kl == 0.5



def test_the_factorqvae_protocol_scores_code_indices(tmp_path):
    torch.manual_seed(0)
    model = build_model("factorqvae", TINY_PARTS, 4).eval()
    with torch.no_grad():
        out = model.encode(tiny_images(8))
    scored = protocol_representation(out, get_protocol("factorqvae"), torch.Generator())
    assert torch.equal(scored, out.indices.float()) and scored.max() < 64
    assert torch.equal(protocol_representation(out, get_protocol("qlae"), None), out.representation)
    cfg = EvalConfig(batch_size=16, protocol="factorqvae")
    metrics = evaluate(model, tiny_data(40), np.arange(40), cfg, step=0, out_dir=tmp_path)
    assert all(np.isfinite(metrics[k]) for k in ("infom", "infoe", "psnr", "val/total_correlation"))


def test_the_tc_term_composes_with_any_autoencoder_on_what_its_decoder_reads():
    plain = build_model("qlae", TINY_PARTS, 4)
    assert plain.discriminator is None and "total_correlation" not in plain.weights
    assert set(plain.configure_optimizers(lr=1e-3, weight_decay=0.1)) == {"model"}
    qlae = build_model("qlae", TINY_PARTS, 4, tc=0.5)
    assert qlae.weights["total_correlation"] == 0.5 and qlae.discriminator.num_inputs == 4  # the quantized z_hat
    assert build_model("qvae", TINY_PARTS, 4, tc=1e-4).discriminator.num_inputs == 4 * 64  # its relaxed one-hots
    assert build_model("beta_vae", TINY_PARTS, 4, tc=1.0).discriminator.num_inputs == 4  # the posterior sample

    torch.manual_seed(0)
    x = tiny_images(8)
    grads = []
    for model in (plain, qlae):  # the same encoder weights: only the TC term differs
        model.encoder.load_state_dict(plain.encoder.state_dict())
        model.latent.load_state_dict(plain.latent.state_dict())
        model.decoder.load_state_dict(plain.decoder.state_dict())
        model.zero_grad()
        model.loss_and_codes(x)[0].backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.encoder.parameters()]))
    assert not torch.allclose(grads[0], grads[1])  # γ·TC reaches the encoder

    cfg = config.resolve(["model=qlae", "model.tc=0.5"])
    assert cfg.model.tc == 0.5 and config.resolve([]).model.tc == 0.0
    with pytest.raises(config.UserError, match="no key 'model.tc'"):
        config.resolve(["model=factor_vae", "model.tc=1"])  # its own discriminator is weighted by gamma
