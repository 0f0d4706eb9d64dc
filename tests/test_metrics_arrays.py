"""MIG, SAP, DCI and DCI-ES: oracle representations, hand-derived partial scores, degenerate and bad input."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from helpers import factorial_sources
from sklearn.metrics import mutual_info_score

from latentquant.metrics import array_metrics, dci, dci_es, mig, sap
from latentquant.metrics.dci import disentanglement_completeness

SIZES = (5, 4, 3)


@pytest.fixture(scope="module")
def sources() -> np.ndarray:
    return factorial_sources(SIZES, repeats=5)  # N = 300


@pytest.fixture(scope="module")
def noise(sources: np.ndarray) -> np.ndarray:
    return np.random.default_rng(0).standard_normal(sources.shape)


def _duplicated(sources: np.ndarray) -> np.ndarray:
    """Identity latents with source 0 copied into a fourth latent."""
    return np.column_stack([sources, sources[:, 0]]).astype(np.float64)


# ------------------------------------------------------------------------------------------------------------
# MIG
# ------------------------------------------------------------------------------------------------------------


def test_mig_identity_is_one_and_duplicate_loses_its_source(sources: np.ndarray) -> None:
    # Integer sources with at most 20 values land one value per bin, and factorial sources are exactly
    # independent, so the identity's gap is exactly H(s_k) per source.
    assert mig(sources, sources.astype(np.float64)) == pytest.approx(1.0, abs=1e-12)
    # The duplicated source has two equally informative latents: gap 0 for it, 1 for the other two.
    assert mig(sources, _duplicated(sources)) == pytest.approx(2 / 3, abs=1e-12)


def test_mig_noise_and_constant_latents_score_near_zero(sources: np.ndarray, noise: np.ndarray) -> None:
    assert mig(sources, noise) < 0.05
    assert mig(sources, np.zeros((len(sources), 3))) == 0.0


def test_mig_matches_histogram_plus_sklearn(sources: np.ndarray) -> None:
    rng = np.random.default_rng(1)
    latents = sources @ rng.standard_normal((3, 4)) + 0.3 * rng.standard_normal((len(sources), 4))
    expected = []
    for k in range(3):
        mi = []
        for j in range(4):
            edges = np.histogram(latents[:, j], bins=20)[1]
            mi.append(mutual_info_score(sources[:, k], np.digitize(latents[:, j], edges[:-1])))
        top = np.sort(mi)[::-1]
        expected.append((top[0] - top[1]) / mutual_info_score(sources[:, k], sources[:, k]))
    assert mig(sources, latents) == pytest.approx(np.mean(expected), abs=1e-10)


def test_mig_discrete_latents_are_label_encoded_not_binned(sources: np.ndarray) -> None:
    # 40 distinct values: 20 bins would merge pairs; label encoding keeps them apart.
    latents = np.column_stack([sources[:, 0] * 8 + sources[:, 1], sources[:, 2]])
    assert mig(sources, latents, discrete_latents=True) > mig(sources, latents.astype(np.float64))


# ------------------------------------------------------------------------------------------------------------
# SAP
# ------------------------------------------------------------------------------------------------------------


def test_sap_identity_duplicate_and_noise(sources: np.ndarray, noise: np.ndarray) -> None:
    assert sap(sources, sources.astype(np.float64)) == pytest.approx(1.0, abs=1e-12)
    assert sap(sources, _duplicated(sources)) == pytest.approx(2 / 3, abs=1e-12)
    assert sap(sources, noise) < 0.05


def test_sap_r_squared_is_invariant_to_affine_maps(sources: np.ndarray) -> None:
    rng = np.random.default_rng(2)
    latents = sources + rng.standard_normal(sources.shape)
    assert sap(sources, 3 * latents - 7) == pytest.approx(sap(sources, latents), abs=1e-12)


def test_sap_discrete_gap_is_above_chance_accuracy() -> None:
    # With classifiers, a useless latent still scores chance accuracy: for binary sources the identity's
    # gap is 1 - 1/2 (the matching latent is perfect, the others sit at chance).
    binary = factorial_sources((2, 2, 2), repeats=30)
    assert sap(binary, binary.astype(np.float64), factor_type="discrete") == pytest.approx(0.5, abs=0.1)
    assert sap(binary, np.random.default_rng(3).standard_normal(binary.shape), factor_type="discrete") < 0.2


# ------------------------------------------------------------------------------------------------------------
# DCI
# ------------------------------------------------------------------------------------------------------------


def test_disentanglement_completeness_by_hand() -> None:
    # Latent 0 splits its importance evenly over 2 sources (D term 0); latent 1 serves source 1 only.
    r = np.array([[1.0, 1.0], [0.0, 2.0]])
    d, c = disentanglement_completeness(r)
    assert d == pytest.approx(0.5 * 0 + 0.5 * 1)
    # Source 0: all on latent 0 (C term 1); source 1: 1/3 vs 2/3 over 2 latents.
    h = -(1 / 3 * np.log(1 / 3) + 2 / 3 * np.log(2 / 3)) / np.log(2)
    assert c == pytest.approx((1 + 1 - h) / 2)


@pytest.mark.parametrize("predictor", ["gbt", "forest"])
def test_dci_identity_scores_high(sources: np.ndarray, predictor: str) -> None:
    result = dci(sources, sources.astype(np.float64), predictor=predictor)
    assert result["predictor"] == predictor
    assert result["importance"].shape == (3, 3)
    assert result["i"] == pytest.approx(1.0)
    # Gradient boosting never splits on a latent without gain; the forest's one-feature candidates sometimes
    # must, which spreads a little importance (0.86 here, at N = 300).
    floor = 0.999 if predictor == "gbt" else 0.8
    assert result["d"] > floor and result["c"] > floor


def test_dci_duplicate_halves_one_sources_completeness(sources: np.ndarray) -> None:
    # Source 0's importance splits between two identical latents, about evenly: its C term is
    # 1 - H_4(1/2, 1/2, 0, 0) = 1/2, the others 1, so C = 5/6; every latent still serves one source, D = 1.
    result = dci(sources, _duplicated(sources))
    assert result["d"] == pytest.approx(1.0, abs=1e-6)
    assert result["c"] == pytest.approx(5 / 6, abs=0.02)


def test_dci_noise_scores_near_zero(sources: np.ndarray, noise: np.ndarray) -> None:
    result = dci(sources, noise, predictor="forest")
    assert result["d"] < 0.1 and result["c"] < 0.1
    assert result["i"] < 0.5  # chance is 1/5 .. 1/3 for these sources


def test_dci_constant_latents_give_zero_with_warning(sources: np.ndarray) -> None:
    with pytest.warns(UserWarning, match="every importance is zero"):
        result = dci(sources, np.zeros((len(sources), 2)), predictor="forest")
    assert result["d"] == 0.0 and result["c"] == 0.0


def test_dci_split_sizes(sources: np.ndarray) -> None:
    gbt = dci(sources, sources.astype(np.float64), n_train=100, n_test=50)
    assert (gbt["n_train"], gbt["n_test"]) == (100, 50)
    assert (dci(sources[::10], sources[::10] * 1.0, predictor="forest")["n_test"]) == 3
    with pytest.raises(ValueError, match="n_train"):
        dci(sources, sources, n_train=290, n_test=20)
    with pytest.raises(ValueError, match="predictor"):
        dci(sources, sources, predictor="lasso")


# ------------------------------------------------------------------------------------------------------------
# DCI-ES
# ------------------------------------------------------------------------------------------------------------


def test_dci_es_identity_duplicate_noise(sources: np.ndarray, noise: np.ndarray) -> None:
    identity = dci_es(sources, sources.astype(np.float64))
    assert identity["explicitness"] == pytest.approx(1.0, abs=1e-6)
    assert identity["size"] == 1.0
    duplicate = dci_es(sources, _duplicated(sources))
    assert duplicate["explicitness"] == pytest.approx(1.0, abs=1e-6)  # duplication hides nothing
    assert duplicate["size"] == pytest.approx(3 / 4)
    assert dci_es(sources, noise)["explicitness"] < 0.05


def test_dci_es_nonlinear_code_is_partly_explicit(sources: np.ndarray) -> None:
    # Each source's values scrambled by a fixed permutation: invertible, so no information is lost, but far
    # from linear; the linear probe fails and the Fourier features recover it.
    scrambled = np.column_stack([np.array([3, 0, 4, 1, 2])[sources[:, 0]], np.array([2, 0, 3, 1])[sources[:, 1]],
                                 np.array([2, 0, 1])[sources[:, 2]]])
    result = dci_es(sources, scrambled + 0.01 * np.random.default_rng(4).standard_normal(sources.shape))
    curves = result["loss_curves"]
    assert np.all(np.diff(curves, axis=1) <= 0)
    assert 0.2 < result["explicitness"] < 0.98
    assert curves[0, 0] > 0.9 * result["baseline_loss"][0] and curves[0, -1] < 0.1 * result["baseline_loss"][0]


def test_dci_es_single_capacity_is_one_minus_relative_loss(sources: np.ndarray) -> None:
    rng = np.random.default_rng(5)
    latents = sources + rng.standard_normal(sources.shape)
    result = dci_es(sources, latents, capacities=(0,))
    expected = 1 - result["loss_curves"][:, 0] / result["baseline_loss"]
    np.testing.assert_allclose(result["explicitness_per_source"], expected)
    with pytest.raises(ValueError, match="capacities"):
        dci_es(sources, latents, capacities=(8, 4))


# ------------------------------------------------------------------------------------------------------------
# Bad input, for every array metric
# ------------------------------------------------------------------------------------------------------------

METRICS = {
    "mig": mig,
    "sap": sap,
    "dci": lambda s, z: dci(s, z, predictor="forest"),
    "dci_es": dci_es,
}
GOOD_S = np.arange(20).reshape(10, 2) % 3
GOOD_Z = np.arange(20.0).reshape(10, 2)


@pytest.mark.parametrize("name", sorted(METRICS))
@pytest.mark.parametrize(
    ("sources", "latents", "message"),
    [
        (GOOD_S, np.zeros((9, 2)), "same number of samples"),
        (GOOD_S[:1], GOOD_Z[:1], "at least 2 samples"),
        (np.arange(10), GOOD_Z, "sources must be a 2-D array"),
        (GOOD_S, np.zeros((10, 2, 1)), "latents must be a 2-D array"),
        (GOOD_S, np.array([[np.nan, 1.0]] * 10), "NaN or inf"),
        (GOOD_S, np.array([[np.inf, 1.0]] * 10), "NaN or inf"),
        (np.array([[np.nan, 1.0]] * 10), GOOD_Z, "sources contains NaN or inf"),
        (np.array([["a", "b"]] * 10), GOOD_Z, "must be numeric"),
        (np.column_stack([GOOD_S[:, 0], np.ones(10)]), GOOD_Z, r"source\(s\) \[1\]"),
    ],
)
def test_bad_input_raises_value_error(name: str, sources, latents, message: str) -> None:
    with pytest.raises(ValueError, match=message), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        METRICS[name](sources, latents)


@pytest.mark.parametrize("metric", [mig, sap])
def test_gap_metrics_need_two_latents(metric) -> None:
    with pytest.raises(ValueError, match="at least 2 latent"):
        metric(GOOD_S, GOOD_Z[:, :1])


def test_huge_latents_score_as_their_scaled_down_copy():
    """A column near ±1.7e308 has a range that overflows float64; it must score as the same column made small
    (a power-of-two scale, so the two are exactly proportional), not as 'every latent is constant'."""
    rng = np.random.default_rng(0)
    sources = rng.integers(0, 4, (400, 2))
    small = np.column_stack([sources[:, 0] - 1.5, rng.standard_normal(400), sources[:, 1] * 0.3])
    huge = small.copy()
    huge[:, 0] = np.ldexp(small[:, 0], 1023)  # up to ±1.3e308: its range overflows
    a = array_metrics(sources, small, dci_predictor="forest")
    b = array_metrics(sources, huge, dci_predictor="forest")
    assert abs(huge[:, 0]).max() > 1e308
    for key in ("infom", "infoe", "infoc", "mig", "sap", "dci_d", "dci_es_explicitness"):
        assert b[key] == pytest.approx(a[key], abs=1e-9), key


def test_uint64_sources_near_two_to_the_64_score_as_small_labels():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 4, (400, 2)).astype(np.uint64)
    latents = labels.astype(np.float64) + 0.01 * rng.standard_normal((400, 2))
    top = labels + np.uint64(2**64 - 8)  # the same labels near 2**64: cast directly, they merge into one float64
    assert len(np.unique(top[:, 0].astype(np.float64))) == 1
    a = array_metrics(labels, latents, dci_predictor="forest")
    b = array_metrics(top, latents, dci_predictor="forest")
    for key in ("sap", "dci_es_explicitness", "infom", "mig"):
        assert np.isfinite(b[key]) and b[key] == pytest.approx(a[key], abs=1e-6), key
