"""Evaluation protocols: each picks the conventions of one codebase, is recorded, and warns where they matter."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from helpers import TINY

from latentquant import config
from latentquant import train as train_mod
from latentquant.cli import main
from latentquant.errors import UserError
from latentquant.evaluate import evaluate_run, protocol_representation
from latentquant.metrics import dci, infomec, mig, sap
from latentquant.metrics import protocols as protocols_mod
from latentquant.metrics.protocols import PROTOCOLS, get_protocol, warn_factorvae_pruning
from latentquant.metrics.suite import array_metrics
from latentquant.modules.latents import LatentOutput


@pytest.fixture(scope="module")
def codes() -> tuple[np.ndarray, np.ndarray]:
    """Three sources; integer codes: a copy of each, source 0's with 30 levels (more than MIG's 20 bins)."""
    rng = np.random.default_rng(0)
    n = 600
    sources = np.stack([rng.integers(0, 30, n), rng.integers(0, 4, n), rng.integers(0, 3, n)], axis=1)
    return sources, sources + rng.integers(0, 2, sources.shape) * (sources < 2)


def test_protocols_differ_where_their_codebases_do(codes) -> None:
    sources, latents = codes
    qlae = array_metrics(sources, latents, dci_predictor="forest")
    with pytest.warns(UserWarning, match=r"MIG \(dlib protocol\) bins each code into 20.*latent 0 \(3\d levels\)"):
        dlib = array_metrics(sources, latents, protocol="dlib", dci_predictor="forest")
    assert qlae["mig"] == pytest.approx(mig(sources, latents))  # label-encoded codes
    assert dlib["mig"] == pytest.approx(mig(sources, latents, discrete_latents=False))  # binned
    assert dlib["mig"] != pytest.approx(qlae["mig"])
    assert qlae["sap"] == pytest.approx(sap(sources, latents))
    assert dlib["sap"] == pytest.approx(sap(sources, latents, factor_type="discrete"))
    tripod = array_metrics(sources, latents.astype(float), discrete_latents=True, protocol="tripod")
    want = infomec(sources, latents.astype(float), discrete_latents=True, activity="tripod")
    assert tripod["infom"] == pytest.approx(want["infom"]) and tripod["infoc"] == pytest.approx(want["infoc"])
    assert tripod["dci_d"] == pytest.approx(dci(sources, latents.astype(float), predictor="forest")["d"])


def test_factorqvae_protocol_uses_its_estimator_settings() -> None:
    rng = np.random.default_rng(1)
    sources = rng.integers(0, 5, (400, 2))
    latents = sources + 0.5 * rng.standard_normal(sources.shape)
    got = array_metrics(sources, latents, protocol="factorqvae", dci_predictor="forest")
    want = infomec(sources, latents, n_neighbors=3, infoe_max_iter=500)
    assert got["infom"] == pytest.approx(want["infom"])
    assert got["infom"] != pytest.approx(infomec(sources, latents)["infom"], abs=1e-6)  # k = 10 differs


def test_fresh_rows_split_exactly_as_the_protocol_says(codes) -> None:
    sources, latents = codes
    small = dataclasses.replace(PROTOCOLS["dlib"], fresh_split=(400, 200))
    with pytest.warns(UserWarning, match="MIG"):
        got = array_metrics(sources, latents, protocol=small, dci_predictor="forest", fresh=True)
    assert got["mig"] == pytest.approx(mig(sources[:400], latents[:400], discrete_latents=False))
    with pytest.raises(ValueError, match="600 rows"):
        array_metrics(sources[:500], latents[:500], protocol=small, fresh=True)


def test_unknown_protocol_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown evaluation protocol 'disent'.*qlae, tripod, factorqvae, dlib"):
        get_protocol("disent")
    with pytest.raises(UserError, match="eval.protocol must be one of"):
        config.resolve(["eval.protocol=disent"])


def test_describe_names_what_departs_from_the_default() -> None:
    assert PROTOCOLS["qlae"].describe() == "qlae (QLAE code, Hsu et al. 2023)"
    described = PROTOCOLS["dlib"].describe()
    assert "sap_mode=discrete" in described and "sampling=fresh" in described


def test_factorvae_pruning_warns_only_for_an_informative_latent() -> None:
    nmi = np.array([[0.9, 0.0, 0.02], [0.0, 0.8, 0.01]])
    with pytest.warns(UserWarning, match=r"dropping informative latent 1 \(NMI 0.80\)"):
        warn_factorvae_pruning(np.array([True, False, False]), nmi, PROTOCOLS["dlib"])
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_factorvae_pruning(np.array([True, True, False]), nmi, PROTOCOLS["dlib"])  # latent 2 is noise


def test_protocol_representation_samples_posteriors_and_reads_indices() -> None:
    mean, scale = torch.zeros(1000, 2), torch.full((1000, 2), 0.5)
    gaussian = LatentOutput(z_hat=mean, representation=mean, losses={}, scale=scale)
    assert torch.equal(protocol_representation(gaussian, PROTOCOLS["qlae"], None), mean)
    drawn = protocol_representation(gaussian, PROTOCOLS["factorqvae"], torch.Generator().manual_seed(0))
    assert drawn.std().item() == pytest.approx(0.5, abs=0.03)
    again = protocol_representation(gaussian, PROTOCOLS["factorqvae"], torch.Generator().manual_seed(0))
    assert torch.equal(drawn, again)
    values, indices = torch.tensor([[0.3, -1.2]]), torch.tensor([[4, 0]])
    quantized = LatentOutput(z_hat=values, representation=values, losses={}, indices=indices)
    assert protocol_representation(quantized, PROTOCOLS["factorqvae"], None).tolist() == [[4.0, 0.0]]
    assert torch.equal(protocol_representation(quantized, PROTOCOLS["tripod"], None), values)


def test_eval_records_the_protocol_and_draws_fresh_samples(tiny_h5, tmp_path, monkeypatch) -> None:
    run = tmp_path / "run"
    train_mod.train(config.resolve([*TINY, f"data.path={tiny_h5}", f"run_dir={run}", "model=beta_vae",
                                    "train.steps=2", "train.eval_every=100"]))
    small = dataclasses.replace(PROTOCOLS["factorqvae"], fresh_split=(200, 100))
    monkeypatch.setitem(protocols_mod.PROTOCOLS, "factorqvae", small)
    metrics, out_dir = evaluate_run(run, protocol="factorqvae", dci_predictor="forest", factorvae_votes=0)
    saved = json.loads((out_dir / "metrics.json").read_text())
    assert metrics["protocol"] == saved["protocol"] == "factorqvae"
    again, _ = evaluate_run(run, protocol="factorqvae", dci_predictor="forest", factorvae_votes=0)
    assert again["infom"] == metrics["infom"]  # the fresh draw and the posterior samples are seeded
    default, _ = evaluate_run(run, dci_predictor="forest", factorvae_votes=0)
    assert default["protocol"] == "qlae" and default["infom"] != metrics["infom"]
    assert main(["eval", str(run), "--protocol", "disent"]) == 2
