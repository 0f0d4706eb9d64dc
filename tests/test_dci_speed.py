"""DCI's faster paths: threaded fits equal sequential ones, the hist learner, the cap on the training split."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from helpers import factorial_sources
from sklearn.ensemble import GradientBoostingClassifier

from latentquant.metrics import dci
from latentquant.metrics._inputs import train_test_indices

SIZES = (5, 2, 3)  # different class counts: a fit landing in another source's column would show


@pytest.fixture(scope="module")
def sources() -> np.ndarray:
    return factorial_sources(SIZES, repeats=4)  # N = 120


def test_threaded_gbt_equals_sequential_scikit_learn_fits(sources: np.ndarray) -> None:
    rng = np.random.default_rng(0)
    latents = sources + 0.4 * rng.standard_normal(sources.shape)
    result = dci(sources, latents, n_train=80, n_test=40, n_jobs=2)
    train, test = train_test_indices(len(sources), 80, 40, 0)
    for k in range(sources.shape[1]):
        model = GradientBoostingClassifier(random_state=0).fit(latents[train], sources[train, k])
        np.testing.assert_array_equal(result["importance"][:, k], model.feature_importances_)
    sequential = dci(sources, latents, n_train=80, n_test=40, n_jobs=1)
    for key in ("d", "c", "i", "train_accuracy", "importance"):
        np.testing.assert_array_equal(sequential[key], result[key])


def test_hist_learner_scores_the_identity_as_gbt_does(sources: np.ndarray) -> None:
    latents = sources.astype(np.float64)
    hist = dci(sources, latents, predictor="hist")
    gbt = dci(sources, latents)
    assert hist["predictor"] == "hist" and (hist["n_train"], hist["n_test"]) == (gbt["n_train"], gbt["n_test"])
    for key in ("d", "c", "i"):
        assert hist[key] == pytest.approx(gbt[key], abs=0.01)
    np.testing.assert_allclose(hist["importance"].sum(axis=0), 1.0)  # split gains, normalised per source


def test_forest_training_split_is_capped_with_a_warning(sources: np.ndarray) -> None:
    latents = sources.astype(np.float64)
    with pytest.warns(UserWarning, match="max_train = 50 of the 108 points"):
        capped = dci(sources, latents, predictor="forest", max_train=50)
    assert (capped["n_train"], capped["n_test"]) == (50, 12)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # neither the default cap (10,000) nor an explicit n_train warns
        assert dci(sources, latents, predictor="forest")["n_train"] == 108
        assert dci(sources, latents, predictor="forest", n_train=100, max_train=50)["n_train"] == 100
    with pytest.raises(ValueError, match="max_train"):
        dci(sources, latents, predictor="forest", max_train=1)
    with pytest.raises(ValueError, match="n_jobs"):
        dci(sources, latents, n_jobs=0)
