"""InfoMEC and PSNR: golden values, oracles, agreement with scikit-learn, degenerate and bad input."""

from __future__ import annotations

import importlib
import json
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse
from helpers import factorial_sources
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_selection import mutual_info_classif
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss, mutual_info_score
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from threadpoolctl import threadpool_limits

from latentquant.metrics import _mi, _pool, infomec, psnr

# The module, not the function of the same name that the package exports.
infomec_module = importlib.import_module("latentquant.metrics.infomec")

# tests/golden/infomec: what the authors' standalone metrics/infomec.py returns on fixed inputs, kept with the tests
# so they never skip.
GOLDEN = Path(__file__).resolve().parent / "golden" / "infomec"
GOLDEN_CASES = ["ideal_discrete", "entangled_discrete", "noisy_continuous"]
PROPERTY = settings(max_examples=25, deadline=None, derandomize=True)


# ------------------------------------------------------------------------------------------------------------
# Fixtures and helpers
# ------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def expected() -> dict:
    return json.loads((GOLDEN / "expected.json").read_text())


def _sklearn_log_loss(x: np.ndarray, y: np.ndarray) -> float:
    model = LogisticRegression(C=np.inf, class_weight="balanced", tol=1e-4, max_iter=100, solver="lbfgs")
    # One BLAS thread: OpenBLAS's default threads make these tiny fits crawl on a busy machine.
    with warnings.catch_warnings(), threadpool_limits(limits=1, user_api="blas"):
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(x, y)
    return log_loss(y, model.predict_proba(x))


def _sklearn_infomec(sources: np.ndarray, latents: np.ndarray, discrete: bool, seed: int) -> dict:
    """The reference formulation in scikit-learn, with a fixed jitter seed (the reference leaves it free).

    Zero-NMI lines give nan here (0/0), where latentquant applies the degenerate-case rules.
    """
    with np.errstate(invalid="ignore"):
        return _sklearn_infomec_values(sources, latents, discrete, seed)


def _sklearn_infomec_values(sources: np.ndarray, latents: np.ndarray, discrete: bool, seed: int) -> dict:
    k = sources.shape[1]
    nmi = np.empty((k, latents.shape[1]))
    scaled = StandardScaler().fit_transform(latents)
    for i in range(k):
        if discrete:
            nmi[i] = [mutual_info_score(sources[:, i], z) for z in latents.T]
        else:
            nmi[i] = mutual_info_classif(scaled, sources[:, i], n_neighbors=10, random_state=seed)
        nmi[i] /= mutual_info_score(sources[:, i], sources[:, i])
    ranges = np.ptp(latents, axis=0)
    active = ranges > 0 if discrete else ranges > ranges.max() / 20
    pruned, a = nmi[:, active], active.sum()
    design = OneHotEncoder(sparse_output=False).fit_transform(latents) if discrete else scaled
    null = [_sklearn_log_loss(np.zeros_like(latents), s) for s in sources.T]
    fitted = [_sklearn_log_loss(design, s) for s in sources.T]
    return {
        "infom": (np.mean(pruned.max(0) / pruned.sum(0)) - 1 / k) / (1 - 1 / k),
        "infoc": (np.mean(pruned.max(1) / pruned.sum(1)) - 1 / a) / (1 - 1 / a),
        "infoe": np.mean([(n0 - n1) / n0 for n0, n1 in zip(null, fitted, strict=True)]),
        "nmi": nmi,
        "active_latents": active,
    }


def _random_latents(rng: np.random.Generator, sources: np.ndarray, d: int, discrete: bool) -> np.ndarray:
    """Noisy mixtures of the sources, plus one dead latent."""
    n, k = sources.shape
    mixing = rng.normal(size=(k, d)) * (rng.random((k, d)) < 0.5)
    latents = sources @ mixing + rng.normal(scale=rng.uniform(0.1, 2.0), size=(n, d))
    latents[:, -1] = 0.5 + 1e-4 * rng.normal(size=n) * (not discrete)
    return np.round(latents) if discrete else latents


# ------------------------------------------------------------------------------------------------------------
# Golden cases (values of the reference implementation)
# ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", GOLDEN_CASES)
def test_golden_case_reproduces_reference(name: str, expected: dict) -> None:
    data = np.load(GOLDEN / f"golden_{name}.npz")
    want = expected[name]
    got = infomec(data["sources"], data["latents"], discrete_latents=bool(data["discrete_latents"]))
    assert got["infom"] == pytest.approx(want["infom"], abs=0.01)
    assert got["infoc"] == pytest.approx(want["infoc"], abs=0.01)
    assert got["infoe"] == pytest.approx(want["infoe"], abs=0.02)
    np.testing.assert_allclose(got["nmi"], np.array(want["nmi"]), atol=0.01)
    np.testing.assert_array_equal(got["active_latents"], np.array(want["active_latents"]))


# ------------------------------------------------------------------------------------------------------------
# Oracles
# ------------------------------------------------------------------------------------------------------------


def test_identity_discrete_representation_scores_one() -> None:
    sources = factorial_sources((4, 3, 5), repeats=8)
    result = infomec(sources, sources.copy())  # integer latents: discrete
    assert result["infom"] == pytest.approx(1.0)
    assert result["infoc"] == pytest.approx(1.0)
    assert result["infoe"] > 0.99
    np.testing.assert_allclose(result["nmi"], np.eye(3), atol=1e-12)


def test_identity_continuous_representation_scores_near_one() -> None:
    rng = np.random.default_rng(0)
    sources = rng.integers(0, 6, size=(1500, 3))
    latents = sources + 0.05 * rng.normal(size=sources.shape)
    result = infomec(sources, latents)
    assert result["infom"] > 0.97
    assert result["infoc"] > 0.97
    assert result["infoe"] > 0.9
    assert np.diag(result["nmi"]).min() > 0.9


def test_permuted_and_rescaled_latents_keep_scores() -> None:
    rng = np.random.default_rng(1)
    sources = rng.integers(0, 5, size=(800, 3))
    latents = np.column_stack([sources + 0.2 * rng.normal(size=sources.shape), rng.normal(size=800)])
    base = infomec(sources, latents)
    moved = infomec(sources, 7.0 * latents[:, [3, 2, 0, 1]] - 3.0)
    for key in ("infom", "infoc", "infoe"):
        assert moved[key] == pytest.approx(base[key], abs=1e-6)


def test_independent_noise_scores_near_zero() -> None:
    rng = np.random.default_rng(2)
    sources = rng.integers(0, 8, size=(2000, 3))
    result = infomec(sources, rng.normal(size=(2000, 4)))
    assert result["nmi"].max() < 0.02
    assert abs(result["infoe"]) < 0.02


def test_constant_latents_are_inactive_and_all_constant_is_an_error() -> None:
    sources = factorial_sources((3, 4), repeats=5)
    latents = np.column_stack([sources[:, 0], np.full(60, 2), sources[:, 1]]).astype(float)
    result = infomec(sources, latents, discrete_latents=True)
    np.testing.assert_array_equal(result["active_latents"], [True, False, True])
    np.testing.assert_allclose(result["nmi"][:, 1], 0.0)
    assert result["infom"] == pytest.approx(1.0) and result["infoc"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="no active latent"):
        infomec(sources, np.ones((60, 3)))


# ------------------------------------------------------------------------------------------------------------
# Agreement with scikit-learn (randomised)
# ------------------------------------------------------------------------------------------------------------


@PROPERTY
@given(
    seed=st.integers(0, 2**31 - 1),
    n=st.integers(20, 300),
    n_classes=st.integers(1, 15),
    n_latents=st.integers(1, 3),
    n_neighbors=st.integers(1, 12),
    ties=st.sampled_from(["none", "rounded", "constant", "offset"]),
)
def test_knn_mutual_info_matches_mutual_info_classif(
    seed, n, n_classes, n_latents, n_neighbors, ties
) -> None:
    """Same jitter (same random_state): estimates agree to rounding, tiny and singleton classes included."""
    rng = np.random.default_rng(seed)
    labels = rng.choice(n_classes, size=n, p=rng.dirichlet(np.full(n_classes, 0.7)))
    values = rng.normal(size=(n, n_latents)) * rng.uniform(0.1, 50)
    values[:, 0] += labels
    if ties == "rounded":
        values = np.round(values)
    elif ties == "constant":
        values[:, -1] = 3.0
    elif ties == "offset":
        values = values * 1e6 + 1e3
    want = mutual_info_classif(values, labels, n_neighbors=n_neighbors, random_state=seed)
    columns = _mi.SortedColumns.from_columns(_mi.sklearn_jitter(values, seed))
    got = _mi.knn_mutual_info(columns, _mi.label_encode(labels)[0], n_neighbors)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)


@PROPERTY
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(2, 400), a=st.integers(1, 12), b=st.integers(1, 12))
def test_plugin_mutual_info_matches_mutual_info_score(seed, n, a, b) -> None:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, a, n)
    codes = np.column_stack([rng.integers(0, b, n), (labels + rng.integers(0, 2, n)) % a, np.zeros(n, int)])
    label_codes, n_labels = _mi.label_encode(labels)
    encoded = [_mi.label_encode(c) for c in codes.T]
    got = _mi.plugin_mutual_info(
        label_codes, n_labels, np.column_stack([e[0] for e in encoded]), [e[1] for e in encoded]
    )
    want = [mutual_info_score(labels, c) for c in codes.T]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    assert _mi.plugin_entropy(label_codes, n_labels) == pytest.approx(
        mutual_info_score(labels, labels), abs=1e-12
    )


@PROPERTY
@given(
    seed=st.integers(0, 2**31 - 1),
    n=st.integers(20, 250),
    n_classes=st.integers(2, 6),
    n_features=st.integers(1, 5),
    kind=st.sampled_from(["continuous", "onehot", "separable", "dead column"]),
)
def test_balanced_logistic_loss_matches_sklearn(seed, n, n_classes, n_features, kind) -> None:
    """Converged fits agree to ~1e-9; fits stopped at max_iter follow the same path up to rounding."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, n_classes, n)
    labels[:n_classes] = np.arange(n_classes)
    x = rng.normal(size=(n, n_features))
    x[:, 0] += labels * rng.uniform(0, 3)
    if kind == "onehot":
        codes = np.where(rng.random(n) < 0.7, labels, rng.integers(0, 4, n))
        x = OneHotEncoder(sparse_output=False).fit_transform(np.column_stack([codes, rng.integers(0, 3, n)]))
    elif kind == "separable":
        x = np.eye(n_classes)[labels]
    elif kind == "dead column":
        x[:, -1] = 0.0
    want = _sklearn_log_loss(x, labels)
    got = _mi.balanced_logistic_log_loss(x, labels, n_classes)
    assert got == pytest.approx(want, abs=1e-3 * np.log(n_classes))


@pytest.mark.parametrize("counts", [(5, 50), (3, 30, 300), (10, 10, 10, 70)])
def test_null_model_loss_is_log_of_class_count(counts: tuple[int, ...]) -> None:
    labels = np.repeat(np.arange(len(counts)), counts)
    assert _sklearn_log_loss(np.zeros((labels.size, 3)), labels) == pytest.approx(
        np.log(len(counts)), abs=1e-9
    )
    assert _mi.null_log_loss(len(counts)) == np.log(len(counts))


def test_one_hot_designs_give_the_dense_loss() -> None:
    rng = np.random.default_rng(3)
    codes = rng.permutation(np.arange(600) % 280)  # every code present
    labels = np.where(rng.random(600) < 0.6, codes // 70, rng.integers(0, 4, 600))
    dense = np.eye(280)[codes]
    from_codes = infomec_module._design_matrix(codes[:, None].astype(float), discrete=True)
    assert isinstance(from_codes, _mi.OneHotCodes)
    np.testing.assert_array_equal(from_codes.toarray(), dense)
    want = _mi.balanced_logistic_log_loss(dense, labels, 4)
    assert _mi.balanced_logistic_log_loss(from_codes, labels, 4) == pytest.approx(want, abs=1e-9)
    assert _mi.balanced_logistic_log_loss(scipy.sparse.csr_array(dense), labels, 4) == pytest.approx(want, abs=1e-9)


@pytest.mark.parametrize("block_logits", [256 * 3, 4_000_000])
def test_one_hot_blocks_give_the_same_objective(block_logits: int) -> None:
    """Several blocks of samples (the smallest blocks, 256 rows) and one block give the dense matrix's loss."""
    rng = np.random.default_rng(12)
    raw = np.stack([rng.integers(0, m, 1000) for m in (7, 5, 30, 40)], axis=1)
    design = infomec_module._design_matrix(raw, discrete=True)
    labels = rng.integers(0, 3, 1000)
    dense = _mi._SoftmaxProblem.build(design.toarray(), labels, 3)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_mi, "_ONE_HOT_BLOCK_LOGITS", block_logits)
        codes = _mi._OneHotSoftmaxProblem(design, labels, 3)
    assert len(codes.slices) == (4 if block_logits < 1000 else 1) and len(codes.roots) > 1
    for scale in (0.3, 100.0):
        theta = scale * rng.standard_normal(dense.n_parameters())
        want_loss, want_grad = dense.loss_and_gradient(theta)
        got_loss, got_grad = codes.loss_and_gradient(theta)
        assert got_loss == pytest.approx(want_loss, rel=1e-12)
        np.testing.assert_allclose(got_grad, want_grad, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("merge", ["none", "default", "all"])
@PROPERTY
@given(
    seed=st.integers(0, 2**31 - 1),
    n=st.integers(2, 300),
    n_classes=st.integers(2, 5),
    levels=st.lists(st.integers(1, 12), min_size=1, max_size=5),
)
def test_one_hot_codes_give_the_one_hot_objective(merge, seed, n, n_classes, levels) -> None:
    """The code path computes the loss, gradient and log-probabilities of the one-hot design matrix.

    ``merge`` forces no merged groups (one gather per latent), the default rule, or merging everything (one group:
    the loss summed over value combinations). Large parameters take the max-shift branch instead of exp products.
    """
    rng = np.random.default_rng(seed)
    n = max(n, n_classes)
    raw = np.stack([rng.integers(0, m, n) for m in levels], axis=1)
    design = infomec_module._design_matrix(raw, discrete=True)
    labels = rng.integers(0, n_classes, n)
    labels[:n_classes] = np.arange(n_classes)
    dense = _mi._SoftmaxProblem.build(design.toarray(), labels, n_classes)
    fraction = {"none": 0.0, "default": _mi._MAX_GROUP_FRACTION, "all": np.inf}[merge]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_mi, "_MAX_GROUP_FRACTION", fraction)
        codes = _mi._OneHotSoftmaxProblem(design, labels, n_classes)
    if merge == "all":
        assert len(codes.roots) == 1
    assert codes.n_parameters() == dense.n_parameters()
    for scale in (0.0, 0.3, 100.0):
        theta = scale * rng.standard_normal(dense.n_parameters())
        want_loss, want_grad = dense.loss_and_gradient(theta)
        got_loss, got_grad = codes.loss_and_gradient(theta)
        assert got_loss == pytest.approx(want_loss, rel=1e-12, abs=1e-12)
        np.testing.assert_allclose(got_grad, want_grad, rtol=1e-10, atol=1e-13)
        np.testing.assert_allclose(
            codes.true_class_log_proba(theta), dense.true_class_log_proba(theta), rtol=1e-12, atol=1e-10
        )


@pytest.mark.parametrize("discrete", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_infomec_matches_sklearn_formulation(discrete: bool, seed: int) -> None:
    rng = np.random.default_rng(seed)
    sources = np.column_stack([rng.integers(0, 5, 400), rng.integers(0, 3, 400), rng.integers(0, 2, 400)])
    latents = _random_latents(rng, sources, d=4, discrete=discrete)
    want = _sklearn_infomec(sources, latents, discrete, seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # zero-NMI lines: the formulation above gives nan there
        got = infomec(sources, latents, discrete_latents=discrete, random_state=seed)
    np.testing.assert_allclose(got["nmi"], want["nmi"], atol=1e-9)
    np.testing.assert_array_equal(got["active_latents"], want["active_latents"])
    for key in ("infom", "infoc"):
        if np.isfinite(want[key]):
            assert got[key] == pytest.approx(want[key], abs=1e-9)
        else:
            assert np.isfinite(got[key])
    assert got["infoe"] == pytest.approx(want["infoe"], abs=1e-3)


def test_discrete_latents_default_follows_dtype() -> None:
    rng = np.random.default_rng(4)
    sources = rng.integers(0, 4, size=(300, 2))
    codes = (sources + rng.integers(0, 2, size=(300, 2))).astype(np.int32)
    as_int = infomec(sources, codes)
    as_float_discrete = infomec(sources, codes.astype(float), discrete_latents=True)
    as_continuous = infomec(sources, codes.astype(float))
    np.testing.assert_allclose(as_int["nmi"], as_float_discrete["nmi"])
    assert as_int["infoe"] == pytest.approx(as_float_discrete["infoe"])
    assert not np.allclose(as_int["nmi"], as_continuous["nmi"])


def test_random_state_fixes_the_jitter() -> None:
    rng = np.random.default_rng(5)
    sources = rng.integers(0, 3, size=(200, 2))
    latents = np.round(sources + rng.normal(size=(200, 2)))  # ties: the jitter decides them
    first, again = infomec(sources, latents, random_state=7), infomec(sources, latents, random_state=7)
    np.testing.assert_array_equal(first["nmi"], again["nmi"])
    assert np.isfinite(infomec(sources, latents, random_state=None)["infom"])


def test_training_activity_rule_uses_an_eighth_of_the_max_range() -> None:
    rng = np.random.default_rng(6)
    sources = rng.integers(0, 4, size=(400, 2))
    latents = np.column_stack(
        [sources[:, 0], sources[:, 1], sources[:, 1] * 0.1, rng.normal(size=400) * 0.01]
    )
    latents = latents + 0.01 * rng.normal(size=latents.shape)
    ranges = np.ptp(latents, axis=0)
    assert ranges.max() / 20 < ranges[2] < ranges.max() / 8  # active by the reference rule only
    reference = infomec(sources, latents)
    training = infomec(sources, latents, activity="training")
    np.testing.assert_array_equal(reference["active_latents"], [True, True, True, False])
    np.testing.assert_array_equal(training["active_latents"], [True, True, False, False])
    assert training["infoc"] > reference["infoc"]  # the weak copy of source 1 no longer dilutes it


def test_tripod_activity_rule_uses_interquartile_ranges() -> None:
    rng = np.random.default_rng(7)
    n = 400
    sources = rng.integers(0, 4, size=(n, 2))
    # Latent 2 has a large range from a few outliers but a tiny interquartile range: active by range, not IQR.
    outliers = np.where(np.arange(n) < 8, 50.0, 0.0)
    latents = np.column_stack([sources[:, 0], sources[:, 1], outliers + 0.001 * rng.normal(size=n)])
    iqr = np.subtract(*np.percentile(latents, [75, 25], axis=0))
    assert iqr[2] < iqr.max() / 10 and np.ptp(latents[:, 2]) > np.ptp(latents, axis=0).max() / 20
    np.testing.assert_array_equal(infomec(sources, latents)["active_latents"], [True, True, True])
    np.testing.assert_array_equal(infomec(sources, latents, activity="tripod")["active_latents"], [True, True, False])
    # Discrete codes in [-1, 1]: IQR > 0.1 absolutely; a code that moves 0.05 is inactive however large the rest.
    codes = np.column_stack([sources[:, 0] / 3, sources[:, 1] * 0.02])
    with pytest.warns(UserWarning, match="single active latent"):
        tripod = infomec(sources, codes, discrete_latents=True, activity="tripod")
    np.testing.assert_array_equal(tripod["active_latents"], [True, False])


def test_gap_variants_of_infom_and_infoc() -> None:
    sources = factorial_sources((4, 3, 2), repeats=3)
    # Latent 3 duplicates source 0: InfoC's gap loses source 0 (top1 = top2), InfoM's gap stays 1.
    latents = np.column_stack([sources, sources[:, 0]])
    result = infomec(sources, latents)
    assert result["infom_gap"] == pytest.approx(1.0)
    assert result["infoc_gap"] == pytest.approx(2 / 3)
    # The compactness gap counts inactive latents, the modularity gap does not.
    nmi = result["nmi"]
    assert result["infoc_gap"] == pytest.approx(np.mean([np.sort(row)[-1] - np.sort(row)[-2] for row in nmi]))
    assert set(result) >= {"infom", "infoe", "infoc", "nmi", "active_latents"}


def test_heldout_infoe_scores_unseen_samples() -> None:
    rng = np.random.default_rng(8)
    sources = rng.integers(0, 3, size=(600, 2))
    clean = sources + 0.3 * rng.normal(size=sources.shape)
    noise = rng.normal(size=(600, 8))
    warnings.simplefilter("ignore", UserWarning)  # noise latents trip the zero-NMI warnings, not the point here
    in_sample = infomec(sources, noise)["infoe"]
    held_out = infomec(sources, noise, infoe_holdout=0.5)["infoe"]
    assert in_sample > 0 and held_out < in_sample  # noise fits the training half only
    assert held_out < 0.02
    informative = infomec(sources, clean, infoe_holdout=0.5)
    assert informative["infoe"] == pytest.approx(infomec(sources, clean)["infoe"], abs=0.05)
    assert informative["infom"] == infomec(sources, clean)["infom"]  # the holdout leaves the NMI alone
    assert infomec(sources, noise, infoe_holdout=0.5, random_state=1)["infoe"] != held_out
    with pytest.raises(ValueError, match="infoe_holdout"):
        infomec(sources, clean, infoe_holdout=1.0)


# ------------------------------------------------------------------------------------------------------------
# Degenerate cases and bad input
# ------------------------------------------------------------------------------------------------------------


def test_source_captured_by_no_latent_contributes_uniform_ratio() -> None:
    sources = factorial_sources((4, 3, 2), repeats=3)  # source 2 is independent of both latents
    latents = sources[:, :2].copy()
    with pytest.warns(UserWarning, match="source 2: zero NMI"):
        result = infomec(sources, latents)
    # Ratios 1, 1 and 1/A = 1/2: mean 5/6, rescaled (5/6 - 1/2) / (1/2) = 2/3.
    assert result["infoc"] == pytest.approx(2 / 3)
    assert np.isfinite(result["infom"]) and np.isfinite(result["infoe"])


def test_latent_with_no_information_contributes_uniform_ratio() -> None:
    grid = factorial_sources((4, 3, 2), repeats=3)
    sources, latents = grid[:, :2], grid.copy()  # latent 2 is independent of both sources
    with pytest.warns(UserWarning, match="latent 2: zero NMI"):
        result = infomec(sources, latents)
    # Ratios 1, 1 and 1/K = 1/2: mean 5/6, rescaled (5/6 - 1/2) / (1/2) = 2/3.
    assert result["infom"] == pytest.approx(2 / 3)
    assert result["infoc"] == pytest.approx(1.0)


def test_single_active_latent_gives_nan_infoc_with_warning() -> None:
    sources = factorial_sources((3, 4), repeats=5)
    latents = np.column_stack([sources[:, 0], np.zeros(60, int)])
    with pytest.warns(UserWarning, match="InfoC is undefined"):
        result = infomec(sources, latents)
    assert np.isnan(result["infoc"])
    assert np.isfinite(result["infom"]) and np.isfinite(result["infoe"])


def test_continuous_noise_latent_with_all_estimates_clipped_counts_as_uniform() -> None:
    sources = factorial_sources((3, 4), repeats=50)
    rng = np.random.default_rng(4)  # a draw where both k-NN estimates for the noise latent clip to 0
    latents = np.column_stack([sources + 0.1 * rng.normal(size=sources.shape), rng.normal(size=600)])
    with pytest.warns(UserWarning, match="latent 2: zero NMI"):
        result = infomec(sources, latents)
    np.testing.assert_array_equal(result["nmi"][:, 2], 0.0)
    assert result["infom"] == pytest.approx(2 / 3, abs=1e-3)  # ratios ~1, ~1 and 1/K = 1/2
    assert all(np.isfinite(result[key]) for key in ("infom", "infoc", "infoe"))


@pytest.mark.parametrize(
    ("sources", "latents", "message"),
    [
        (np.zeros((10, 1)), np.zeros((10, 2)), "at least 2 sources"),
        (np.arange(20).reshape(10, 2), np.zeros((9, 2)), "same number of samples"),
        (np.arange(2).reshape(1, 2), np.zeros((1, 2)), "at least 2 samples"),
        (np.arange(10), np.zeros((10, 2)), "sources must be a 2-D array"),
        (np.arange(20).reshape(10, 2), np.zeros((10, 2, 1)), "latents must be a 2-D array"),
        (np.arange(20).reshape(10, 2), np.zeros((10, 0)), "no columns"),
        (np.arange(20).reshape(10, 2), np.array([[np.nan, 1.0]] * 10), "NaN or inf"),
        (np.arange(20).reshape(10, 2), np.array([[np.inf, 1.0]] * 10), "NaN or inf"),
        (np.array([[np.nan, 1.0]] * 10), np.zeros((10, 2)), "sources contains NaN or inf"),
        (np.array([["a", "b"]] * 10), np.zeros((10, 2)), "must be numeric"),
        (np.column_stack([np.arange(10), np.ones(10)]), np.arange(20.0).reshape(10, 2), r"source\(s\) \[1\]"),
    ],
)
def test_bad_input_raises_value_error(sources, latents, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        infomec(sources, latents)


def test_bad_options_raise_value_error() -> None:
    sources, latents = np.arange(20).reshape(10, 2) % 3, np.arange(20.0).reshape(10, 2)
    with pytest.raises(ValueError, match="activity"):
        infomec(sources, latents, activity="bogus")
    with pytest.raises(ValueError, match="n_neighbors"):
        infomec(sources, latents, n_neighbors=0)


@pytest.mark.parametrize("discrete", [False, True])
@pytest.mark.parametrize("options", [{}, {"infoe_holdout": 0.3}, {"nmi_floor": "permutation", "n_permutations": 3}])
def test_threads_do_not_change_the_values(discrete: bool, options: dict) -> None:
    rng = np.random.default_rng(21)
    sources = np.column_stack([rng.integers(0, 5, 500), rng.integers(0, 3, 500), rng.integers(0, 7, 500)])
    latents = _random_latents(rng, sources, d=5, discrete=discrete)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        runs = [infomec(sources, latents, discrete_latents=discrete, n_jobs=jobs, **options) for jobs in (1, 3, None)]
    for other in runs[1:]:
        np.testing.assert_array_equal(other["nmi"], runs[0]["nmi"])
        for key in ("infom", "infoe", "infoc", "infom_gap", "infoc_gap"):
            assert other[key] == runs[0][key]


@pytest.mark.parametrize("n_jobs", [0, -1, 1.5, True])
def test_bad_thread_counts_are_refused(n_jobs) -> None:
    sources, latents = np.arange(20).reshape(10, 2) % 3, np.arange(20.0).reshape(10, 2)
    with pytest.raises(ValueError, match="n_jobs"):
        infomec(sources, latents, n_jobs=n_jobs)


def test_default_thread_count_honours_the_omp_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert _pool.resolve_jobs(None) == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "not a number")
    assert _pool.resolve_jobs(None) >= 1
    assert _pool.resolve_jobs(5) == 5


def test_thread_map_keeps_order_starts_costliest_first_and_raises() -> None:
    started: list[int] = []
    lock = threading.Lock()

    def record(i: int) -> int:
        with lock:
            started.append(i)
        if i == 7:
            raise RuntimeError("task 7 failed")
        return i * i

    costs = [1, 9, 3, 8, 2]
    assert _pool.thread_map(record, range(5), n_jobs=2, costs=costs) == [0, 1, 4, 9, 16]
    assert set(started[:2]) == {1, 3}  # the two most expensive were submitted first
    assert _pool.thread_map(record, [2, 3], n_jobs=1) == [4, 9]
    with pytest.raises(RuntimeError, match="task 7"):
        _pool.thread_map(record, [1, 7, 2], n_jobs=2)


def test_torch_tensors_are_accepted() -> None:
    torch = pytest.importorskip("torch")
    sources = factorial_sources((3, 4), repeats=5)
    result = infomec(
        torch.from_numpy(sources), torch.from_numpy(sources.astype(np.float32)), discrete_latents=True
    )
    assert result["infom"] == pytest.approx(1.0)


# ------------------------------------------------------------------------------------------------------------
# PSNR
# ------------------------------------------------------------------------------------------------------------


def test_psnr_known_values() -> None:
    target = np.zeros((2, 4, 4, 3))
    reconstruction = target.copy()
    reconstruction[0] += 0.1  # MSE 1e-2 -> 20 dB
    reconstruction[1] += 0.01  # MSE 1e-4 -> 40 dB
    assert psnr(target, reconstruction) == pytest.approx(30.0)
    assert psnr(target[:1], reconstruction[:1]) == pytest.approx(20.0)


def test_psnr_of_identical_images_is_capped() -> None:
    images = np.random.default_rng(0).random((3, 8, 8))
    assert psnr(images, images) == pytest.approx(100.0)
    mixed = images.copy()
    mixed[0] = 1.0 - mixed[0]
    assert np.isfinite(psnr(images, mixed))


def test_psnr_accepts_torch_and_rejects_bad_input() -> None:
    torch = pytest.importorskip("torch")
    target = torch.zeros(2, 3, 4, 4)
    assert psnr(target, target + 0.1) == pytest.approx(20.0)
    with pytest.raises(ValueError, match="same shape"):
        psnr(np.zeros((2, 4, 4)), np.zeros((2, 4, 5)))
    with pytest.raises(ValueError, match="batch of images"):
        psnr(np.zeros(4), np.zeros(4))
    with pytest.raises(ValueError, match="NaN or inf"):
        psnr(np.full((1, 2, 2), np.nan), np.zeros((1, 2, 2)))
