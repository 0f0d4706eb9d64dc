"""One suite over every registered model: builds, learns, partitions its parameters as the reference."""

import pytest
import torch

from latentquant.checkpoint import load_checkpoint, save_checkpoint
from latentquant.models import MODELS, ModelParts, build_model, clip_gradients, make_optimizer
from latentquant.modules.networks import repeating_stack

TINY = ModelParts(in_channels=3, image_size=16, stack=repeating_stack((8, 16), per_stage=1), dense=(32,))


def tiny_images(n=32, seed=0):
    """Blobs at random positions: something an autoencoder can learn in a few steps."""
    g = torch.Generator().manual_seed(seed)
    pos = torch.randint(2, 14, (n, 2), generator=g)
    yy, xx = torch.meshgrid(torch.arange(16), torch.arange(16), indexing="ij")
    d = (yy[None] - pos[:, 0, None, None]) ** 2 + (xx[None] - pos[:, 1, None, None]) ** 2
    blob = torch.exp(-d / 6.0)
    return torch.stack([blob, 1 - blob, 0.5 * blob], dim=1)


def make(name, seed=0):
    torch.manual_seed(seed)
    entry = MODELS[name]
    model = build_model(name, TINY, 4, dataset_size=1000)
    opt = make_optimizer(model, lr=3e-3, weight_decay=entry.defaults.get("weight_decay", 0.0))
    return model, opt


@pytest.mark.parametrize("name", sorted(MODELS))
def test_training_reduces_loss(name):
    model, opt = make(name)
    x = tiny_images()
    losses = []
    for _ in range(60):
        loss, terms = model.loss(x)
        opt.zero_grad()
        loss.backward()
        clip_gradients(opt, 1.0)
        opt.step()
        losses.append(float(terms["bce"]))
    assert sum(losses[-5:]) / 5 < losses[0] - 0.02


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_trainable_parameter_gets_gradient(name):
    model, _ = make(name)
    loss, _ = model.loss(tiny_images(8))
    loss.backward()
    for pname, p in model.named_parameters():
        if p.requires_grad:
            assert p.grad is not None and torch.count_nonzero(p.grad) > 0, pname


@pytest.mark.parametrize("name", sorted(MODELS))
def test_partitions_follow_reference(name):
    model, opt = make(name)
    groups = {g["name"]: g for g in opt.param_groups}
    names = {id(p): n for n, p in model.named_parameters()}
    plain = {names[id(p)] for p in groups["unregularized"]["params"]}
    decayed = {names[id(p)] for p in groups["regularized"]["params"]}
    assert all(n.endswith(".bias") or n.startswith("latent.") for n in plain)
    assert all(not n.endswith(".bias") and not n.startswith("latent.") for n in decayed)
    assert "decoder.constant" in decayed
    assert groups["unregularized"]["weight_decay"] == 0.0


@pytest.mark.parametrize("name", sorted(MODELS))
def test_checkpoint_round_trip_gives_identical_outputs(name, tmp_path):
    model, opt = make(name)
    x = tiny_images(8)
    for _ in range(3):
        loss, _ = model.loss(x)
        opt.zero_grad()
        loss.backward()
        opt.step()
    save_checkpoint(tmp_path, 3, model, opt, {"note": "x"})
    other, other_opt = make(name, seed=1)
    meta = load_checkpoint(tmp_path, other, other_opt)
    assert meta["step"] == 3 and meta["note"] == "x"
    with torch.no_grad():
        model.eval(), other.eval()
        assert torch.equal(model(x).logits, other(x).logits)
        model.train(), other.train()
    # and the optimizer continues identically (same noise for the sampling models)
    for m, o in ((model, opt), (other, other_opt)):
        torch.manual_seed(5)
        loss, _ = m.loss(x)
        o.zero_grad()
        loss.backward()
        o.step()
    for p, q in zip(model.parameters(), other.parameters(), strict=True):
        assert torch.equal(p, q)


def test_qlae_codebooks_learn_and_decay_spares_them():
    model, opt = make("qlae")
    before = model.latent.values.detach().clone()
    x = tiny_images()
    for _ in range(20):
        loss, _ = model.loss(x)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert not torch.equal(before, model.latent.values.detach())
    assert model.weights == {"bce": 1.0, "quantization": 0.01, "commitment": 0.01}


def test_clip_is_elementwise_and_only_on_regularized_group():
    model, opt = make("qlae")
    for p in model.parameters():
        p.grad = torch.full_like(p, 5.0)
    clip_gradients(opt, 1.0)
    for g in opt.param_groups:
        for p in g["params"]:
            assert torch.all(p.grad == (1.0 if g["clip"] else 5.0))


def test_weight_decay_is_decoupled_adamw():
    model, opt = make("qlae")
    assert isinstance(opt, torch.optim.AdamW)
    groups = {g["name"]: g for g in opt.param_groups}
    assert groups["regularized"]["weight_decay"] == 0.1


def test_model_specific_objectives():
    pixels = 3 * 16 * 16
    assert build_model("beta_vae", TINY, 4, beta=3.0).weights["kl"] == pytest.approx(3.0 * 4 / pixels)
    tc = build_model("beta_tcvae", TINY, 4, dataset_size=100, lambda_tc=6.0)
    assert tc.weights["total_correlation"] == pytest.approx(6.0 / pixels) and tc.weights["kl"] == 0.0
    assert set(build_model("bio_ae", TINY, 4).weights) == {"bce", "nonnegativity", "activity"}
    vq = build_model("vqvae", TINY, 4)
    assert vq.latent.embeddings.shape == (512, 64) and vq.weights["commitment"] == 0.25
    assert MODELS["vqvae_wd"].defaults["weight_decay"] == 0.01 and MODELS["qlae_no_wd"].defaults["weight_decay"] == 0
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
    latent = build_model("beta_tcvae", TINY, 4, dataset_size=50).latent
    h = torch.randn(64, 8)
    out = latent(h)
    mu, sigma = latent.posterior(h)
    z = out.z_hat
    log_q = (-0.5 * (torch.log(2 * torch.pi * sigma**2) + ((z - mu) / sigma) ** 2)).sum(1)
    log_p = (-0.5 * (torch.log(torch.tensor(2 * torch.pi)) + z**2)).sum(1)
    total = out.losses["mutual_information"] + out.losses["total_correlation"] + out.losses["dimension_kl"]
    assert torch.allclose(total, (log_q - log_p).mean(), atol=1e-4)


def test_global_quantizer_shares_one_codebook():
    from latentquant.modules.quantizers import GlobalScalarQuantizer

    q = GlobalScalarQuantizer(3, 5)
    z = torch.tensor([[0.26, -0.4, 0.1], [0.0, 0.5, -0.26]])
    out = q(z)
    book = q.codebook(0).detach()
    assert torch.equal(out.z_hat.detach(), book[(z[..., None] - book).abs().argmin(-1)])
    out.losses["quantization"].backward()
    assert q.values.grad.shape == (1, 5) and torch.count_nonzero(q.values.grad) > 0


def test_vector_quantizer_snaps_slots_to_nearest_embedding():
    from latentquant.modules.quantizers import VectorQuantizer

    torch.manual_seed(0)
    vq = VectorQuantizer(2, num_embeddings=8, embedding_dim=3)
    target = vq.embeddings.detach()[[5, 2]]
    out = vq((target + 0.01).flatten()[None])
    assert out.indices.tolist() == [[5, 2]]
    assert torch.allclose(out.z_hat.view(2, 3), target)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_evaluates(name, tmp_path):
    import numpy as np

    from latentquant.data import GroundTruthData
    from latentquant.evaluate import evaluate

    images = (tiny_images(40).permute(0, 2, 3, 1).numpy() * 255).astype(np.uint8)
    rng = np.random.default_rng(0)
    factors = rng.integers(0, 3, size=(40, 2))
    data = GroundTruthData("tiny", images, factors, ["a", "b"], [3, 3], [np.arange(3.0), np.arange(3.0)])
    model, _ = make(name)
    metrics = evaluate(model, data, np.arange(40), step=0, out_dir=tmp_path, batch_size=16)
    assert all(np.isfinite(metrics[k]) for k in ("infom", "infoe", "psnr"))
    assert (tmp_path / "metrics.json").is_file() and (tmp_path / "nmi.png").is_file()
    assert (tmp_path / "traversals.png").is_file() == getattr(model.latent, "traversable", True)
