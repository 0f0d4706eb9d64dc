"""Tripod's legs against known answers: FSQ's grid and straight-through gradient, KLM on independent and on
correlated Gaussians (analytic total correlation), NHP on additive and bilinear decoders (analytic fractions);
and the composable terms on other autoencoders."""

import math
from dataclasses import replace

import pytest
import torch
from helpers import TINY_PARTS, tiny_images

from latentquant.models import build_model, get_spec
from latentquant.modules.klm import kernel_multiinformation, silverman_factor
from latentquant.modules.nhp import normalized_hessian_penalty
from latentquant.modules.quantizers import FiniteScalarQuantizer

LEVELS = torch.tensor([-1 + 2 * k / 11 for k in range(12)])


def test_fsq_outputs_lie_on_the_twelve_levels_and_indices_name_them():
    torch.manual_seed(0)
    fsq = FiniteScalarQuantizer(3)
    out = fsq(3 * torch.randn(1000, 3))
    z = out.z_hat.detach()
    nearest = (z[..., None] - LEVELS).abs().min(-1).values
    assert nearest.max() < 1e-6
    assert torch.allclose(z, LEVELS[out.indices], atol=1e-6)
    assert set(out.indices.unique().tolist()) == set(range(12))  # every level reached, +-1 included
    assert torch.equal(out.representation, z) and out.losses == {}
    assert torch.allclose(out.continuous, torch.tanh(out.continuous.atanh()))
    assert fsq.codebook_sizes() == [12] * 3 and torch.allclose(fsq.codebook_values()[1], LEVELS)
    assert not list(fsq.parameters())


def test_fsq_rounds_to_nearest_level_and_passes_gradient_straight_through_tanh():
    e = torch.tensor([[0.0, 0.05, -0.3, 10.0]], requires_grad=True)
    out = FiniteScalarQuantizer(4)(e)
    expected = LEVELS[(torch.tanh(e.detach()) + 1).mul(5.5).round().long()]
    assert torch.allclose(out.z_hat.detach(), expected, atol=1e-6)
    out.z_hat.sum().backward()
    # straight through the rounding: d z_q / d e = d tanh(e) / d e
    assert torch.allclose(e.grad, 1 - torch.tanh(e.detach()) ** 2)


def test_silverman_factor_matches_the_spec():
    assert silverman_factor(64, 12) == pytest.approx(0.713, abs=1e-3)
    assert silverman_factor(64, 14) == pytest.approx(0.735, abs=1e-3)
    assert silverman_factor(64, 18) == pytest.approx(0.769, abs=1e-3)


def _klm(rho: float, batch: int = 512, seeds: int = 4) -> float:
    """Mean KLM over a few batches of a 2-D unit Gaussian with correlation rho."""
    values = []
    for seed in range(seeds):
        g = torch.Generator().manual_seed(seed)
        a, b = torch.randn(2, batch, generator=g, dtype=torch.float64)
        values.append(float(kernel_multiinformation(torch.stack([a, rho * a + math.sqrt(1 - rho**2) * b], 1))))
    return sum(values) / seeds


def _smoothed_total_correlation(rho: float, batch: int = 512) -> float:
    """The large-batch limit of KLM for unit Gaussians with correlation rho: the cross-entropies of the data
    under the kernel-smoothed joint N(0, C + a^2 I) and marginals N(0, 1 + 1), the marginals wider (bandwidth s
    without Silverman's a). It exceeds the true TC -0.5 log det C: that gap is the estimator's smoothing bias."""
    a2 = silverman_factor(batch, 2) ** 2
    c = torch.tensor([[1.0, rho], [rho, 1.0]], dtype=torch.float64)
    smoothed = c + a2 * torch.eye(2, dtype=torch.float64)
    joint = -math.log(2 * math.pi) - 0.5 * torch.logdet(smoothed) - 0.5 * torch.trace(torch.linalg.solve(smoothed, c))
    marginals = 2 * (-0.5 * math.log(2 * math.pi * 2) - 0.25)
    return float(joint) - marginals


@pytest.mark.parametrize("rho", [0.0, 0.6, 0.9])
def test_klm_matches_the_analytic_total_correlation_within_its_smoothing_bias(rho):
    """KLM = TC + the smoothing bias (analytic, 0.19 nats at rho = 0, 0.06 at 0.9) + the self-pair's share."""
    truth = -0.5 * math.log(1 - rho**2)
    limit = _smoothed_total_correlation(rho)
    got = _klm(rho)
    assert got == pytest.approx(limit, abs=0.07)  # the rest: the kept self-pair (positive) and sampling
    assert truth <= got <= limit + 0.07


def test_klm_of_independent_latents_is_only_its_bias_and_shrinks_to_it_with_the_batch():
    small, large = _klm(0.0, batch=128), _klm(0.0, batch=1024, seeds=2)
    assert large < small  # the self-pair's share falls as 1/B
    assert large == pytest.approx(_smoothed_total_correlation(0.0, 1024), abs=0.05)


def test_klm_grows_with_dependence():
    assert _klm(0.0) < _klm(0.6) < _klm(0.9)


def test_klm_bandwidths_come_from_the_continuous_latent():
    torch.manual_seed(0)
    z = torch.randn(64, 3)
    assert not torch.isclose(kernel_multiinformation(z, 10 * z), kernel_multiinformation(z))


def _nhp(f, d: int = 2, batch: int = 4096) -> float:
    torch.manual_seed(0)
    z = torch.randn(batch, d, dtype=torch.float64)
    return float(normalized_hessian_penalty(lambda u: [f(u)], z))


def test_nhp_is_zero_for_an_additive_decoder():
    assert _nhp(lambda z: torch.stack([torch.sin(z[:, 0]) + z[:, 1] ** 2, torch.exp(z[:, 0]) - z[:, 1] ** 3], 1)) \
        < 1e-12


def test_nhp_of_a_bilinear_decoder_is_its_analytic_off_diagonal_fraction():
    # f = z1 z2: all of the Hessian's energy is off the diagonal.
    assert _nhp(lambda z: (z[:, 0] * z[:, 1])[:, None]) == pytest.approx(1.0, abs=0.05)
    # f = z1 z2 + c z1^2, std-normalized H = [[2c s1^2, s1 s2], [s1 s2, 0]]: fraction 2 h^2 / (2 h^2 + (2c s1^2)^2)
    torch.manual_seed(0)
    z = torch.randn(4096, 2, dtype=torch.float64) * torch.tensor([1.0, 2.0], dtype=torch.float64)
    s1, s2 = z.std(0, unbiased=False).tolist()
    c = 0.5
    got = float(normalized_hessian_penalty(lambda u: [(u[:, 0] * u[:, 1] + c * u[:, 0] ** 2)[:, None]], z))
    h = s1 * s2
    assert got == pytest.approx(2 * h**2 / (2 * h**2 + (2 * c * s1**2) ** 2), abs=0.05)


def test_nhp_sums_over_layers():
    one = _nhp(lambda z: (z[:, 0] * z[:, 1])[:, None])
    torch.manual_seed(0)
    z = torch.randn(4096, 2, dtype=torch.float64)
    two = float(normalized_hessian_penalty(lambda u: [(u[:, 0] * u[:, 1])[:, None], u[:, :1] ** 2], z))
    assert two == pytest.approx(one, abs=1e-9)


def test_tripod_registers_its_legs_and_ablations():
    assert build_model("tripod", TINY_PARTS, 4).weights == {"bce": 1.0, "klm": 1e-4, "nhp": 1e-2}
    assert build_model("tripod_no_klm", TINY_PARTS, 4).weights == {"bce": 1.0, "nhp": 1e-2}
    assert build_model("tripod_no_nhp", TINY_PARTS, 4).weights == {"bce": 1.0, "klm": 1e-4}
    assert not build_model("tripod_no_fsq", TINY_PARTS, 4).discrete_latents
    assert isinstance(build_model("tripod", TINY_PARTS, 4).latent, FiniteScalarQuantizer)
    spec = get_spec("tripod")
    assert spec.weight_decay == 0.0 and spec.train == {"lr": 2e-4, "batch_size": 64}


def test_klm_and_nhp_compose_with_any_autoencoder_and_cost_nothing_when_off():
    plain = build_model("qlae", TINY_PARTS, 4)
    assert "klm" not in plain.weights and set(plain.loss(tiny_images(8))[1]) == {"bce", "quantization",
                                                                                  "commitment", "loss"}
    model = build_model("qlae", TINY_PARTS, 4, klm=1e-4, nhp=1e-2)
    assert model.weights["klm"] == 1e-4 and model.weights["nhp"] == 1e-2
    loss, terms = model.loss(tiny_images(8))
    assert {"klm", "nhp"} <= set(terms) and torch.isfinite(loss)
    loss.backward()
    assert all(p.grad is not None for p in model.decoder.parameters() if p.requires_grad)
    with pytest.raises(TypeError, match="klm"):
        build_model("infowgan_gp", TINY_PARTS, 4, klm=1.0)


def test_nhp_in_evaluation_leaves_the_training_rng_alone_and_is_repeatable():
    model = build_model("tripod", TINY_PARTS, 4).eval()
    x = tiny_images(8)
    state = torch.get_rng_state()
    with torch.no_grad():
        a, b = model.eval_terms(x, model(x))["nhp"], model.eval_terms(x, model(x))["nhp"]
    assert torch.equal(torch.get_rng_state(), state) and torch.equal(a, b)


def test_tripods_own_networks_train_and_penalise_its_layers():
    torch.manual_seed(0)
    parts = replace(TINY_PARTS, image_size=32)  # four halvings: 2x2 at the bottom (instance norm needs > 1x1)
    model = build_model("tripod", parts, 4, residual=True)
    assert type(model.encoder).__name__ == "ResidualEncoder" and type(model.decoder).__name__ == "FiLMDecoder"
    z = torch.zeros(2, 4)
    assert model.decode(z).shape == (2, 3, 32, 32)
    # the conditioning vector and the first three stages' outputs, as Tripod's cond, block0..2 (not the logits)
    assert [tuple(a.shape[1:]) for a in model.decoder.hessian_layers(z)] == [(256,), (64, 4, 4), (32, 8, 8),
                                                                             (16, 16, 16)]
    x = torch.nn.functional.interpolate(tiny_images(8), scale_factor=2, mode="bilinear")
    assert torch.isfinite(model.loss(x)[1]["nhp"])
    model = build_model("tripod_no_nhp", parts, 4, residual=True)  # training without NHP's 9x pass: cheap
    opts = model.configure_optimizers(lr=3e-3, weight_decay=0.0)
    rng = torch.Generator()
    logs = [model.train_step(x, s, opts, clip=1.0, rng=rng) for s in range(15)]
    assert all(torch.isfinite(v) for log in logs for v in log.values())
    assert float(logs[-1]["bce"]) < float(logs[0]["bce"]) - 0.02


def test_tripods_own_networks_refuse_images_whose_decoder_would_start_at_1x1(tmp_path, capsys):
    """At 16x16 (the CPU preset's size) the FiLM decoder would start at 1x1, where instance norm outputs 0."""
    from latentquant.cli import main

    with pytest.raises(ValueError, match="too small for Tripod's FiLM decoder"):
        build_model("tripod", replace(TINY_PARTS, image_size=16), 4, residual=True)
    run = tmp_path / "run"
    assert main(["train", "model=tripod", "model.residual=true", "data.image_size=16", "train.steps=1",
                 f"run_dir={run}"]) == 2
    # The look-alike is rendered first on a machine without it in its cache; that notice is not an error line.
    err = [ln for ln in capsys.readouterr().err.splitlines() if not ln.startswith("rendering the ")]
    assert len(err) == 1 and "image_size >= 32" in err[0] and not run.exists()


def test_the_terms_are_config_keys_of_every_autoencoder_and_reach_the_built_model():
    from latentquant import config

    cfg = config.resolve(["model=qlae", "model.klm=1e-4", "model.nhp=1e-2"])
    assert (cfg.model.klm, cfg.model.nhp) == (1e-4, 1e-2)
    assert config.resolve(["model=beta_vae"]).model.nhp == 0.0
    assert config.resolve(["model=tripod", "data.name=mpi3d"]).model.klm == 1e-8  # the per-dataset preset
    with pytest.raises(ValueError, match="klm"):
        config.resolve(["model=infowgan_gp", "model.klm=1"])  # a GAN's objective is not an Autoencoder's
