"""FactorVAE score through DatasetSampler: oracle encoders, a dropped factor, degenerate and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from latentquant.data.base import GroundTruthData
from latentquant.evaluate import DatasetSampler
from latentquant.metrics import FactorSampler, factorvae_score

SIZES = (5, 4, 3)
FAST = {"n_train": 600, "n_eval": 400, "n_variance": 1000, "batch_size": 32}


@pytest.fixture(scope="module")
def data() -> GroundTruthData:
    """A full factorial dataset whose 1x1 'images' store the factor indices in their channels."""
    axes = np.meshgrid(*[np.arange(s) for s in SIZES], indexing="ij")
    factors = np.stack([a.ravel() for a in axes], axis=1)
    images = factors.astype(np.uint8)[:, None, None, :]
    return GroundTruthData("toy", images, factors, ["a", "b", "c"], list(SIZES), [np.arange(s) for s in SIZES])


def _identity(images: np.ndarray) -> np.ndarray:
    return images.reshape(len(images), -1).astype(np.float64)


def test_sampler_holds_the_factor_fixed_and_follows_the_protocol(data: GroundTruthData) -> None:
    sampler = DatasetSampler(data, _identity)
    assert isinstance(sampler, FactorSampler) and sampler.num_factors == 3
    rng = np.random.RandomState(0)
    for k in range(3):
        batch = sampler.sample_fixed(k, 50, rng)
        assert batch.shape == (50, 3)
        assert np.ptp(batch[:, k]) == 0
        assert all(np.ptp(batch[:, j]) > 0 for j in range(3) if j != k)  # the others still vary


def test_identity_scores_one(data: GroundTruthData) -> None:
    result = factorvae_score(DatasetSampler(data, _identity), **FAST)
    assert result["score"] == 1.0 and result["train_accuracy"] == 1.0
    assert result["active_latents"].all()


def test_rescaling_latents_changes_nothing(data: GroundTruthData) -> None:
    # Each latent is divided by its own standard deviation before the variances are compared.
    scaled = factorvae_score(DatasetSampler(data, lambda im: _identity(im) * [100.0, 1.0, 0.3]), **FAST)
    assert scaled["score"] == 1.0


def test_dropped_factor_scores_its_share(data: GroundTruthData) -> None:
    # Latents (a, a, b): factor c has no latent, so its votes (1/3 of them) land on a latent that the
    # majority assigns to a or b and are always wrong; fixing a gives two zero-variance latents and the first
    # wins. Expected accuracy (K - 1) / K = 2/3, up to the sampling of the factors.
    result = factorvae_score(DatasetSampler(data, lambda im: _identity(im)[:, [0, 0, 1]]), **FAST)
    assert result["score"] == pytest.approx(2 / 3, abs=0.05)


def test_noise_scores_near_chance(data: GroundTruthData) -> None:
    rng = np.random.default_rng(0)
    result = factorvae_score(DatasetSampler(data, lambda im: rng.standard_normal((len(im), 3))), **FAST)
    assert result["score"] < 1 / 3 + 0.1


def test_constant_encoder_has_no_active_latent_and_scores_zero(data: GroundTruthData) -> None:
    result = factorvae_score(DatasetSampler(data, lambda im: np.zeros((len(im), 3))), **FAST)
    assert result["score"] == 0.0 and not result["active_latents"].any()


def test_seed_makes_it_reproducible(data: GroundTruthData) -> None:
    sampler = DatasetSampler(data, lambda im: _identity(im)[:, [0, 0, 1]])
    assert factorvae_score(sampler, **FAST)["score"] == factorvae_score(sampler, **FAST)["score"]


@pytest.mark.parametrize(
    ("encode", "message"),
    [
        (lambda im: np.full((len(im), 3), np.nan), "NaN or inf"),
        (lambda im: np.zeros(len(im)), "2-D array"),
    ],
)
def test_bad_encoder_output_raises_value_error(data: GroundTruthData, encode, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        factorvae_score(DatasetSampler(data, encode), **FAST)


def test_bad_options_and_sampler(data: GroundTruthData) -> None:
    sampler = DatasetSampler(data, _identity)
    with pytest.raises(ValueError, match="batch_size"):
        factorvae_score(sampler, batch_size=1)
    with pytest.raises(ValueError, match="n_train"):
        factorvae_score(sampler, n_train=0)
    with pytest.raises(TypeError, match="sample_fixed"):
        factorvae_score(object())  # type: ignore[arg-type]
