"""Oracle tests of the metrics from the literature beyond InfoMEC/DCI/MIG/SAP: identity, noise, a partial case
whose value is derived by hand, and bad input.

Array metrics use the full factorial sources of sizes (4, 4, 3), each combination 40 times (N = 1920): the
sources are then exactly independent, so plug-in MI between different sources is exactly 0. "ident" is the
sources as float latents; "a", "b", "c" name the sources.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import factorial_data, factorial_sources

from latentquant.evaluate import DatasetSampler
from latentquant.metrics import (
    FactorSampler,
    beta_vae_score,
    dcimig,
    factored_components,
    flatness,
    irs,
    mig_sup,
    modularity_explicitness,
    udr,
    unsupervised_scores,
)

SIZES = (4, 4, 3)
SOURCES = factorial_sources(SIZES, 40)
IDENT = SOURCES.astype(np.float64)
A, B, C = IDENT.T
H = np.log(np.array(SIZES, dtype=float))  # uniform sources: entropy log(size) nats


@pytest.fixture(scope="module")
def noise() -> np.ndarray:
    return np.random.default_rng(0).standard_normal(SOURCES.shape)


# --- MIG-sup -----------------------------------------------------------------------------------------------


def test_mig_sup_oracles(noise: np.ndarray) -> None:
    assert mig_sup(SOURCES, IDENT) == pytest.approx(1.0)
    assert mig_sup(SOURCES, noise) < 0.02
    # A fourth latent 4a + b determines a and b: its NMI is 1 with both, so its gap is 0 and the mean over
    # four latents is (1 + 1 + 1 + 0) / 4. A copied latent keeps its gap of 1: MIG-sup does not mind copies.
    assert mig_sup(SOURCES, np.column_stack([IDENT, 4 * A + B])) == pytest.approx(0.75)
    assert mig_sup(SOURCES, np.column_stack([IDENT, A])) == pytest.approx(1.0)


# --- DCIMIG ------------------------------------------------------------------------------------------------


def test_dcimig_oracles(noise: np.ndarray) -> None:
    assert dcimig(SOURCES, IDENT)["score"] == pytest.approx(1.0)
    assert dcimig(SOURCES, noise)["score"] < 0.02
    # Dropping c: S_a = H(a), S_b = H(b), S_c = 0, so the score is (H(a) + H(b)) / (H(a) + H(b) + H(c)).
    dropped = dcimig(SOURCES, IDENT[:, :2])
    assert dropped["score"] == pytest.approx((H[0] + H[1]) / H.sum())
    np.testing.assert_allclose(dropped["per_source"], [1, 1, 0], atol=1e-12)
    # One latent 4a + b for both a and b has gap I(a) - I(b) = 0; only c earns: H(c) / sum H.
    merged = dcimig(SOURCES, np.column_stack([4 * A + B, C]))
    assert merged["score"] == pytest.approx(H[2] / H.sum())


# --- IRS ---------------------------------------------------------------------------------------------------


def test_irs_oracles() -> None:
    result = irs(SOURCES, IDENT)
    assert result["score"] == pytest.approx(1.0) and result["num_active_dims"] == 3
    np.testing.assert_array_equal(result["parents"], [0, 1, 2])
    # Uniform noise on [0, 1]: within any group |z - E z| is uniform on [0, 1/2], whose 99th percentile is
    # 0.495, and the max deviation is about 1/2, so IRS is about 1 - 0.99 = 0.01.
    uniform = np.random.default_rng(1).random((len(SOURCES), 3))
    assert irs(SOURCES, uniform)["score"] == pytest.approx(0.01, abs=0.015)
    # A fourth latent a + b (sizes 4 and 4): fixing a leaves |b - 1.5| <= 1.5, fixing b leaves |a - 1.5| <= 1.5,
    # and its max deviation from the mean 3 is 3, so its score is 1 - 1.5 / 3 = 1/2. Weighted by the max
    # deviations (1.5, 1.5, 1, 3): (1.5 + 1.5 + 1 + 3 * 0.5) / 7.
    mixed = irs(SOURCES, np.column_stack([IDENT, A + B]))
    np.testing.assert_allclose(mixed["per_latent"], [1, 1, 1, 0.5])
    assert mixed["score"] == pytest.approx(5.5 / 7)


def test_irs_constant_latent_is_inactive() -> None:
    result = irs(SOURCES, np.column_stack([IDENT, np.zeros(len(SOURCES))]))
    assert result["num_active_dims"] == 3 and np.isnan(result["per_latent"][3]) and result["parents"][3] == -1
    assert result["score"] == pytest.approx(1.0)
    assert irs(SOURCES, np.zeros((len(SOURCES), 2)))["score"] == 0.0


# --- modularity / explicitness -----------------------------------------------------------------------------


def test_modularity_explicitness_oracles(noise: np.ndarray) -> None:
    ident = modularity_explicitness(SOURCES, IDENT)
    # On the random training split sources are independent only up to sampling: tiny off-diagonal MI.
    assert ident["modularity"] > 0.99
    assert ident["explicitness_train"] > 0.99 and ident["explicitness_test"] > 0.99
    random = modularity_explicitness(SOURCES, noise)
    assert random["explicitness_test"] == pytest.approx(0.5, abs=0.05)  # chance AUC
    # 4a + b carries all of a and all of b (I = log 4 each) and nothing of c: its modularity is
    # 1 - (2 m^2 - m^2) / (m^2 (K - 1)) = 1/2, so the mean over four latents is 3.5 / 4.
    mixed = modularity_explicitness(SOURCES, np.column_stack([IDENT, 4 * A + B]))
    assert mixed["modularity"] == pytest.approx(0.875, abs=0.01)
    # Dropping c: its one-vs-rest AUCs are chance, 1/2, so explicitness is (1 + 1 + 1/2) / 3.
    dropped = modularity_explicitness(SOURCES, IDENT[:, :2])
    assert dropped["explicitness_test"] == pytest.approx(2.5 / 3, abs=0.03)


# --- unsupervised scores -----------------------------------------------------------------------------------


def test_unsupervised_scores_gaussian_oracles() -> None:
    rng = np.random.default_rng(2)
    n = 4000
    z = rng.standard_normal((n, 3))
    independent = unsupervised_scores(z)
    assert independent["gaussian_total_correlation"] < 0.01
    assert independent["gaussian_wasserstein_correlation"] < 0.01
    # Plug-in MI of independent 20-bin histograms is biased up by about (20 - 1)^2 / (2N) nats at most.
    assert independent["mutual_info_score"] < 19**2 / (2 * n)
    rho = 0.6
    pair = np.column_stack([z[:, 0], rho * z[:, 0] + np.sqrt(1 - rho**2) * z[:, 1]])
    scores = unsupervised_scores(pair)
    # For unit variances and correlation rho: TC = -1/2 log(1 - rho^2); Sigma's eigenvalues are 1 +- rho, so
    # W^2 = 2 tr Sigma - 2 (sqrt(1 + rho) + sqrt(1 - rho)) and the normalised one divides by tr Sigma = 2.
    assert scores["gaussian_total_correlation"] == pytest.approx(-0.5 * np.log(1 - rho**2), abs=0.02)
    w2 = 4 - 2 * (np.sqrt(1 + rho) + np.sqrt(1 - rho))
    assert scores["gaussian_wasserstein_correlation"] == pytest.approx(w2, abs=0.03)
    assert scores["gaussian_wasserstein_correlation_norm"] == pytest.approx(w2 / 2, abs=0.015)
    assert scores["mutual_info_score"] > independent["mutual_info_score"] + 0.1


def test_unsupervised_scores_scale_invariance_and_constant_latents() -> None:
    z = np.random.default_rng(3).standard_normal((500, 3))
    z[:, 1] += 0.5 * z[:, 0]
    base = unsupervised_scores(z)
    scaled = unsupervised_scores(z * [10.0, 0.1, 3.0])
    assert scaled["gaussian_total_correlation"] == pytest.approx(base["gaussian_total_correlation"])
    with_dead = unsupervised_scores(np.column_stack([z, np.ones(500)]))
    assert with_dead["gaussian_total_correlation"] == pytest.approx(base["gaussian_total_correlation"])
    np.testing.assert_array_equal(with_dead["constant_latents"], [3])


# --- UDR ---------------------------------------------------------------------------------------------------


def test_udr_identical_runs_score_near_one_and_independent_ones_low() -> None:
    rng = np.random.default_rng(4)
    n, d = 2000, 4
    z = rng.standard_normal((n, d))
    same = udr([z, z[:, [2, 0, 3, 1]] * [1, -1, 1, -1], 3 * z + 1])
    # Off-diagonal |Spearman| of independent columns is about sqrt(2 / (pi N)) each, so each row and column
    # scores about 1 / (1 + (D - 1) sqrt(2 / (pi N))) instead of 1.
    noise_level = np.sqrt(2 / (np.pi * n))
    np.testing.assert_allclose(same["model_scores"], 1 / (1 + (d - 1) * noise_level), atol=0.02)
    other = udr([z, rng.standard_normal((n, d))])
    assert (other["model_scores"] < 0.1).all()
    # Lasso (alpha 0.1) on standardised latents shrinks the one non-zero coefficient to 0.9 and zeroes the
    # rest: max^2 / sum = 0.9 exactly.
    np.testing.assert_allclose(udr([z, z[:, ::-1]], correlation="lasso")["model_scores"], 0.9, atol=1e-3)


def test_udr_rotated_pair_scores_its_share() -> None:
    rng = np.random.default_rng(5)
    n = 4000
    z = rng.standard_normal((n, 4))
    rotated = z.copy()
    rotated[:, 0], rotated[:, 1] = (z[:, 0] - z[:, 1]) / np.sqrt(2), (z[:, 0] + z[:, 1]) / np.sqrt(2)
    # Two latents rotated by 45 degrees: Pearson 1/sqrt(2) with each of two, Spearman
    # r = (6 / pi) asin(1 / (2 sqrt 2)) for Gaussians; those rows score r^2 / 2r = r / 2, the other two 1.
    r = 6 / np.pi * np.arcsin(1 / (2 * np.sqrt(2)))
    ideal = (2 + 2 * r / 2) / 4
    result = udr([z, rotated])
    assert result["model_scores"][0] == pytest.approx(ideal, abs=0.04)
    assert result["model_scores"][0] < 0.7


def test_udr_inactive_latents_are_left_out() -> None:
    rng = np.random.default_rng(6)
    z = rng.standard_normal((1000, 3))
    dead = np.column_stack([z, 1e-4 * rng.standard_normal(1000)])  # a latent at 1e-4 of the others' scale
    result = udr([dead, z[:, [1, 2, 0]]])
    assert not result["active"][0][3] and result["active"][1].all()
    assert result["model_scores"][0] == pytest.approx(1 / (1 + 2 * np.sqrt(2 / (np.pi * 1000))), abs=0.02)
    kl = [np.array([1.0, 1.0, 1.0, 0.0]), np.ones(3)]
    assert udr([dead, z], activity=kl)["active"][0].tolist() == [True, True, True, False]


# --- sampler metrics ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def data():
    return factorial_data(SIZES)


def _identity(images: np.ndarray) -> np.ndarray:
    return images.reshape(len(images), -1).astype(np.float64)


def _noise_encoder(seed: int):
    rng = np.random.default_rng(seed)
    return lambda images: rng.standard_normal((len(images), 3))


def test_dataset_sampler_pairs_and_traversals(data) -> None:
    sampler = DatasetSampler(data, _identity)
    assert isinstance(sampler, FactorSampler) and sampler.factor_sizes == list(SIZES)
    rng = np.random.RandomState(0)
    z1, z2 = sampler.sample_pairs(1, 200, rng)
    assert (z1[:, 1] == z2[:, 1]).all() and np.ptp(z1[:, 1]) > 0  # shared within a pair, not across pairs
    assert (z1[:, 0] != z2[:, 0]).any()
    path = sampler.traverse(2, rng)
    np.testing.assert_array_equal(path[:, 2], [0, 1, 2])
    assert (np.ptp(path[:, :2], axis=0) == 0).all()
    factors, latents = sampler.sample_labelled(10, rng)
    np.testing.assert_array_equal(factors, latents)


def test_traversal_needs_a_full_grid() -> None:
    subset = factorial_data(SIZES)
    subset.images, subset.factors = subset.images[1:], subset.factors[1:]  # (0, 0, 0) is missing
    sampler = DatasetSampler(subset, _identity)
    with pytest.raises(ValueError, match=r"no image with factors \[0, 0, 0\].*full factorial"):
        for seed in range(200):  # a base with b = c = 0 turns up with probability 1/12 per draw
            sampler.traverse(0, np.random.RandomState(seed))


BETA = {"batch_size": 32, "n_train": 300, "n_eval": 300}


def test_beta_vae_oracles(data) -> None:
    assert beta_vae_score(DatasetSampler(data, _identity), **BETA)["score"] == 1.0
    assert beta_vae_score(DatasetSampler(data, _noise_encoder(0)), **BETA)["score"] == pytest.approx(1 / 3, abs=0.1)
    # One latent a + b for two factors of the same size: fixing a or fixing b gives identically distributed
    # features, so at best half of those points are right, while fixing c (the c latent at 0) is always
    # recognised: (1/2 + 1/2 + 1) / 3 = 2/3.
    merged = DatasetSampler(data, lambda im: np.column_stack([_identity(im)[:, 0] + _identity(im)[:, 1],
                                                              _identity(im)[:, 2]]))
    assert beta_vae_score(merged, **BETA)["score"] == pytest.approx(2 / 3, abs=0.07)


def test_flatness_oracles(data) -> None:
    assert flatness(DatasetSampler(data, _identity), repeats=8)["flatness"] == pytest.approx(1.0)
    # A copy of a: the traversal of a moves along the diagonal of two latents, width_l2 sqrt(2)(S - 1) over
    # length_l1 2(S - 1): 1/sqrt(2) for a, 1 for b and c.
    dup = flatness(DatasetSampler(data, lambda im: _identity(im)[:, [0, 0, 1, 2]]), repeats=8)
    np.testing.assert_allclose(dup["per_factor"], [2**-0.5, 1, 1])
    # Dropping c: its traversal does not move, flatness 0: (1 + 1 + 0) / 3.
    dropped = flatness(DatasetSampler(data, lambda im: _identity(im)[:, :2]), repeats=8)
    assert dropped["flatness"] == pytest.approx(2 / 3)


def test_flatness_and_factored_components_of_noise() -> None:
    # Independent noise: each step is a typical distance and the width a few of them, against a length of
    # S - 1 steps, so flatness is O(1 / (S - 1)); S = 16 here. The per-latent variances of a traversal are
    # equal on average, so their averaged normalised share (axis_ratio_ave) is about 0, and a triplet is
    # ordered alike by the factor and by the latents about half the time.
    sampler = DatasetSampler(factorial_data((16, 16)), _noise_encoder(1))
    assert flatness(sampler, repeats=8)["flatness"] < 0.2
    scores = factored_components(sampler, repeats=8)
    assert scores["axis_ratio_ave"] < 0.1
    assert scores["same_order_global_l2"] == pytest.approx(0.5, abs=0.06)


def test_factored_components_oracles(data) -> None:
    ident = factored_components(DatasetSampler(data, _identity), repeats=8)
    for key in ("linear_ratio", "axis_ratio", "axis_alignment", "rank_corr_factor_l2", "same_order_factor_l1",
                "rank_corr_global_l1"):
        assert ident[key] == pytest.approx(1.0), key
    # A copy of a: a's traversal is a straight line (linear ratio 1) spread over two of D = 4 latents, axis
    # share 1/2, normalised (1/2 - 1/4) / (3/4) = 1/3; geometric mean over factors (1/3 * 1 * 1)^(1/3).
    dup = factored_components(DatasetSampler(data, lambda im: _identity(im)[:, [0, 0, 1, 2]]), repeats=8)
    assert dup["linear_ratio"] == pytest.approx(1.0)
    assert dup["axis_ratio"] == pytest.approx(3 ** (-1 / 3))
    np.testing.assert_allclose(dup["per_factor"]["axis_alignment"], [1 / 3, 1, 1])


# --- bad input ---------------------------------------------------------------------------------------------


ARRAY_METRICS = [mig_sup, lambda s, z: dcimig(s, z), lambda s, z: irs(s, z), modularity_explicitness]


@pytest.mark.parametrize("metric", ARRAY_METRICS)
@pytest.mark.parametrize(
    ("sources", "latents", "message"),
    [
        (SOURCES[:10], IDENT[:9], "same number of samples"),
        (SOURCES[:10], np.where(np.arange(30).reshape(10, 3) == 4, np.nan, IDENT[:10]), "NaN or inf"),
        (np.column_stack([SOURCES[:10, :2], np.zeros(10)]), IDENT[:10], "single value"),
        (SOURCES[:10], np.zeros((10, 0)), "no columns"),
    ],
)
def test_array_metrics_refuse_bad_input(metric, sources, latents, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        metric(sources, latents)


def test_other_bad_input(data) -> None:
    with pytest.raises(ValueError, match="at least 2 sources"):
        mig_sup(SOURCES[:, :1], IDENT[:, :1])
    with pytest.raises(ValueError, match="at least 2 latents"):
        unsupervised_scores(IDENT[:, :1])
    with pytest.raises(ValueError, match="NaN or inf"):
        unsupervised_scores(np.full((5, 2), np.inf))
    with pytest.raises(ValueError, match="at least 2"):
        udr([IDENT])
    with pytest.raises(ValueError, match="same number of rows"):
        udr([IDENT, IDENT[:-1]])
    with pytest.raises(ValueError, match="diff_quantile"):
        irs(SOURCES, IDENT, diff_quantile=0)
    with pytest.raises(ValueError, match="n_train"):
        modularity_explicitness(SOURCES, IDENT, n_train=len(SOURCES))
    with pytest.raises(TypeError, match="sample_pairs"):
        beta_vae_score(object())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="traverse"):
        flatness(object())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="NaN or inf"):
        flatness(DatasetSampler(data, lambda im: np.full((len(im), 2), np.nan)), repeats=1)
    with pytest.raises(ValueError, match="at least 2 latents"):
        factored_components(DatasetSampler(data, lambda im: _identity(im)[:, :1]), repeats=1)
