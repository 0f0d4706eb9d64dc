"""InfoMEC's permutation floor: noise lines stop moving InfoC and InfoM; lines with information are untouched."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from latentquant.metrics import infomec


def _uncaptured_case(n: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    """Sources 0 and 1 each in a rounded latent; source 2 in none; two few-valued noise latents (ties)."""
    rng = np.random.default_rng(0)
    sources = np.stack([rng.integers(0, c, n) for c in (8, 6, 4)], axis=1)
    latents = np.stack([
        np.round(sources[:, 0] + 0.3 * rng.standard_normal(n)),
        np.round(sources[:, 1] + 0.3 * rng.standard_normal(n)),
        rng.integers(0, 3, n),
        rng.integers(0, 5, n),
    ], axis=1).astype(float)
    return sources, latents


def _scores(sources: np.ndarray, latents: np.ndarray, floor: str, seeds: range) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return np.array([[r["infoc"], r["infom"]] for r in (
            infomec(sources, latents, discrete_latents=False, random_state=seed, nmi_floor=floor) for seed in seeds
        )])


def test_floor_removes_the_jitter_spread_of_an_uncaptured_source() -> None:
    sources, latents = _uncaptured_case()
    plain = _scores(sources, latents, "none", range(5))
    floored = _scores(sources, latents, "permutation", range(5))
    assert np.ptp(plain[:, 0]) > 0.05  # the authors' formulation moves with the jitter alone
    assert np.ptp(floored, axis=0).max() < 0.01
    # Source 2 counts as uniform: InfoC is the mean of two concentrated rows and one at 1/A (A = 4 active).
    assert floored[:, 0].mean() == pytest.approx(2 / 3, abs=0.01)


def test_floor_reports_which_lines_fell() -> None:
    sources, latents = _uncaptured_case()
    with pytest.warns(UserWarning, match=r"permutation floor.*source 2.*latent 2.*latent 3"):
        result = infomec(sources, latents, discrete_latents=False, nmi_floor="permutation")
    np.testing.assert_array_equal(result["captured_sources"], [True, True, False])
    np.testing.assert_array_equal(result["informative_latents"], [True, True, False, False])


@pytest.mark.parametrize("discrete", [False, True])
def test_floor_changes_nothing_when_every_line_carries_information(discrete: bool) -> None:
    rng = np.random.default_rng(1)
    n = 2000
    sources = np.stack([rng.integers(0, c, n) for c in (5, 6, 4)], axis=1)
    latents = sources + 0.4 * rng.standard_normal(sources.shape)
    latents[:, 0] += 0.5 * sources[:, 1]  # mixing: off-diagonal information that must be kept
    if discrete:
        latents = np.round(latents)
    plain = infomec(sources, latents, discrete_latents=discrete)
    floored = infomec(sources, latents, discrete_latents=discrete, nmi_floor="permutation")
    assert floored["captured_sources"].all() and floored["informative_latents"].all()
    for key in ("infom", "infoc", "infoe"):
        assert floored[key] == plain[key]


def test_floor_leaves_infoc_alone_when_every_source_is_captured_despite_noise_latents() -> None:
    rng = np.random.default_rng(2)
    n = 2000
    sources = np.stack([rng.integers(0, c, n) for c in (5, 6)], axis=1)
    latents = np.concatenate([sources + 0.3 * rng.standard_normal(sources.shape), rng.standard_normal((n, 2))], 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        plain = infomec(sources, latents)
        floored = infomec(sources, latents, nmi_floor="permutation")
    assert floored["infoc"] == plain["infoc"]
    # The noise latents now count as informing about nothing (1/K each in the mean), as exact MI would have it.
    assert not floored["informative_latents"][2:].any()
    assert floored["infom"] == pytest.approx(0.5, abs=0.01)


def test_floor_options_are_checked() -> None:
    sources, latents = _uncaptured_case(200)
    with pytest.raises(ValueError, match="nmi_floor"):
        infomec(sources, latents, nmi_floor="permutations")
    with pytest.raises(ValueError, match="n_permutations"):
        infomec(sources, latents, nmi_floor="permutation", n_permutations=1)
