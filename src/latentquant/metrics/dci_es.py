"""DCI-ES explicitness (E) and size (S) (Eastwood et al. 2023), with random-Fourier-feature probes.

Eastwood et al. extend DCI with *explicitness*: how easily the sources can be read off the representation,
measured by the loss of probes of growing capacity (the loss-capacity curve), and *size*: how large the
representation is relative to the sources. Their code trains MLPs, random-Fourier-feature (RFF) probes or
random forests of growing size. This module implements one modest member of that family, exactly as
:func:`dci_es` documents, not the paper's full protocol (no SAGE-based D and C, no probe sweeps over seeds).
"""

from __future__ import annotations

import numpy as np

from . import _inputs

DEFAULT_CAPACITIES = (0, 8, 16, 32, 64, 128, 256)


def dci_es(
    sources: np.ndarray,
    latents: np.ndarray,
    *,
    capacities: tuple[int, ...] = DEFAULT_CAPACITIES,
    test_fraction: float = 0.25,
    bandwidth: float = 1.0,
    ridge: float = 1e-6,
    random_state: int | None = 0,
) -> dict:
    """Explicitness E (mean and per source) and size S of ``latents`` (N, D) for ``sources`` (N, K).

    Probe of capacity m: ridge-regularised least squares (penalty ``ridge`` * N on the weights, not the
    intercept) from the features [1, z, sqrt(2/m) cos(z W + b)] to one source, where z are the latents
    standardised with training statistics, W (D, m) ~ N(0, 1/bandwidth^2) and b ~ U(0, 2 pi) are drawn once
    from ``random_state`` and shared (nested: capacity m uses the first m columns), and m = 0 is a linear
    probe. Each source is standardised with training statistics and treated as a real value; the loss is
    the test mean squared error on a seeded split holding out ``test_fraction``.

    With l_k(m) the test loss of source k at capacity m, made non-increasing by a running minimum over the
    capacities (as in the authors' code: a larger probe can always fall back to a smaller one) and clipped
    at the baseline loss l_b (the test MSE of predicting the training mean), and l* = 0 the lowest loss
    (the authors' ICLR setting):

        E_k = 1 - AULCC_k / ((m_max - m_min) * l_b,k),  AULCC_k = trapezoidal area under l_k(m) over m.

    E = 1 when a linear probe already predicts the source perfectly, E = 0 when no probe beats the mean.
    With a single capacity, E_k = 1 - l_k / l_b,k. ``size`` is K / D: 1 when the representation has one
    dimension per source, smaller when it is larger (our reading of the paper's "size"; it does not look at
    the data).

    Returns ``{"explicitness": float, "explicitness_per_source": (K,) array, "size": float,
    "loss_curves": (K, len(capacities)) array of the running-min losses, "baseline_loss": (K,) array,
    "capacities": tuple}``. Raises ``ValueError`` for a constant source, non-finite values, mismatched or
    too few samples, wrong dimensions or bad options.
    """
    source_array, latent_array = _inputs.paired_arrays(sources, latents, "DCI-ES")
    _inputs.encoded_sources(source_array, "DCI-ES")  # rejects constant sources
    caps = _checked_capacities(capacities)
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    n, d = latent_array.shape
    n_test = max(1, round(n * test_fraction))
    if n - n_test < 2:
        raise ValueError(f"DCI-ES needs at least 2 training samples, got N = {n} with test_fraction {test_fraction}")
    rng = np.random.RandomState(random_state)
    train, test = _inputs.train_test_indices(n, n - n_test, n_test, rng)

    z_train, z_test = _standardise(latent_array[train], latent_array[test])
    real = _inputs.float_sources(source_array)
    s_train, s_test = _standardise(real[train], real[test])
    weights = rng.normal(0.0, 1.0 / bandwidth, size=(d, caps[-1]))
    phases = rng.uniform(0.0, 2 * np.pi, size=caps[-1])

    baseline = np.mean(s_test**2, axis=0)  # s_train has mean 0: the mean predictor predicts 0
    losses = np.empty((source_array.shape[1], len(caps)))
    for i, m in enumerate(caps):
        phi_train = _features(z_train, weights[:, :m], phases[:m])
        phi_test = _features(z_test, weights[:, :m], phases[:m])
        coef = _ridge_fit(phi_train, s_train, ridge)
        losses[:, i] = np.mean((phi_test @ coef - s_test) ** 2, axis=0)

    curves = np.minimum(np.minimum.accumulate(losses, axis=1), baseline[:, None])
    per_source = _explicitness(curves, baseline, np.asarray(caps, dtype=np.float64))
    return {
        "explicitness": float(per_source.mean()),
        "explicitness_per_source": per_source,
        "size": source_array.shape[1] / d,
        "loss_curves": curves,
        "baseline_loss": baseline,
        "capacities": caps,
    }


def _explicitness(curves: np.ndarray, baseline: np.ndarray, caps: np.ndarray) -> np.ndarray:
    # A source with zero test variance cannot be scored against the mean; it is trivially explicit.
    safe = np.where(baseline > 0, baseline, 1.0)
    if caps.size == 1:
        return np.where(baseline > 0, 1.0 - curves[:, 0] / safe, 1.0)
    area = np.sum((curves[:, 1:] + curves[:, :-1]) / 2 * np.diff(caps), axis=1)
    return np.where(baseline > 0, 1.0 - area / ((caps[-1] - caps[0]) * safe), 1.0)


def _checked_capacities(capacities: tuple[int, ...]) -> tuple[int, ...]:
    caps = tuple(int(m) for m in capacities)
    if not caps or any(m < 0 for m in caps) or any(b <= a for a, b in zip(caps, caps[1:], strict=False)):
        raise ValueError(f"capacities must be a non-empty, strictly increasing tuple of ints >= 0, got {capacities}")
    return caps


def _standardise(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    train = train.astype(np.float64)
    mean = train.mean(axis=0)
    std = train.std(axis=0)
    std = np.where(std > 0, std, 1.0)  # a constant column stays constant (0) rather than dividing by 0
    return (train - mean) / std, (test.astype(np.float64) - mean) / std


def _features(z: np.ndarray, weights: np.ndarray, phases: np.ndarray) -> np.ndarray:
    columns = [np.ones((z.shape[0], 1)), z]
    if weights.shape[1]:
        columns.append(np.sqrt(2.0 / weights.shape[1]) * np.cos(z @ weights + phases))
    return np.hstack(columns)


def _ridge_fit(phi: np.ndarray, targets: np.ndarray, ridge: float) -> np.ndarray:
    penalty = np.full(phi.shape[1], ridge * phi.shape[0])
    penalty[0] = 0.0  # the intercept is not shrunk
    gram = phi.T @ phi + np.diag(penalty)
    # lstsq rather than solve: duplicated or constant latents make the Gram matrix singular.
    return np.linalg.lstsq(gram, phi.T @ targets, rcond=None)[0]
