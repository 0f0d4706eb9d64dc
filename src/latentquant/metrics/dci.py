"""DCI: disentanglement, completeness and informativeness (Eastwood & Williams 2018)."""

from __future__ import annotations

import warnings
from typing import Literal

import numpy as np

from . import _inputs

Predictor = Literal["gbt", "forest"]
# disentanglement_lib draws 10,000 training and 5,000 test points; Tripod splits its 10,000 points 90/10.
GBT_SPLIT = (10_000, 5_000)
FOREST_TEST_FRACTION = 0.1


def dci(
    sources: np.ndarray,
    latents: np.ndarray,
    *,
    predictor: Predictor = "gbt",
    n_train: int | None = None,
    n_test: int | None = None,
    random_state: int | None = 0,
) -> dict:
    """D, C and I of ``latents`` (N, D) with respect to ``sources`` (N, K), from one classifier per source.

    Each label-encoded source s_k is predicted from all latents by a tree ensemble fitted on a training split;
    its ``feature_importances_`` form column k of the importance matrix R (D, K).

    - ``d`` = sum_j rho_j (1 - H_K(P_j)), P_j = R[j] / sum_k R[j, k], H_K the entropy in base K and
      rho_j = sum_k R[j, k] / sum R the latent's share of the total importance.
    - ``c`` = mean over k of 1 - H_D(R[:, k] / sum_j R[j, k]).
    - ``i`` = mean over k of the test accuracy (disentanglement_lib's "informativeness_test").

    ``predictor="gbt"`` (default) is disentanglement_lib's ``GradientBoostingClassifier()`` with scikit-learn's
    defaults on ``n_train`` = 10,000 / ``n_test`` = 5,000 points; ``predictor="forest"`` is Tripod's
    ``RandomForestClassifier(n_estimators=100, max_depth=10, criterion="entropy")`` on a 90/10 split. Unless
    given, the split sizes are those; when N is too small for 10,000 + 5,000, the gbt split becomes 2/3 : 1/3
    of N. The split is a seeded random permutation (``random_state``, which also seeds the ensembles).
    Latents are passed to the trees unchanged: trees are invariant to monotone rescaling, so Tripod's
    standardisation changes nothing; Tripod's one-hot encoding of integer latents is not done, so R keeps
    one row per latent.

    A source with no importance on any latent (every tree a single leaf) counts as uniform (C term 0), and a
    latent with no importance gets weight 0 in D; when R is all zero, ``d`` is 0 with a warning.
    Returns ``{"d", "c", "i": float, "importance": (D, K) array, "predictor": str, "train_accuracy": float,
    "n_train": int, "n_test": int}``. Raises ``ValueError`` for a constant source, non-finite values,
    mismatched or too few samples, wrong dimensions, or impossible split sizes.
    """
    source_array, latent_array = _inputs.paired_arrays(sources, latents, "DCI")
    codes, _ = _inputs.encoded_sources(source_array, "DCI")
    n = codes.shape[0]
    n_train, n_test = _split_sizes(n, predictor, n_train, n_test)
    train, test = _inputs.train_test_indices(n, n_train, n_test, random_state)
    x = latent_array.astype(np.float64)

    importance = np.zeros((x.shape[1], codes.shape[1]))
    train_acc, test_acc = [], []
    for k in range(codes.shape[1]):
        model = _make_model(predictor, random_state)
        y = codes[:, k]
        model.fit(x[train], y[train])
        importance[:, k] = np.abs(model.feature_importances_)
        train_acc.append(np.mean(model.predict(x[train]) == y[train]))
        test_acc.append(np.mean(model.predict(x[test]) == y[test]))

    d, c = disentanglement_completeness(importance)
    return {
        "d": d,
        "c": c,
        "i": float(np.mean(test_acc)),
        "importance": importance,
        "predictor": predictor,
        "train_accuracy": float(np.mean(train_acc)),
        "n_train": n_train,
        "n_test": n_test,
    }


def disentanglement_completeness(importance: np.ndarray) -> tuple[float, float]:
    """(D, C) of an importance matrix R (D latents x K sources); see :func:`dci`.

    With a single source D is 1 for any latent that matters (base-1 entropy is taken as 0), and with a
    single latent C is 1 likewise.
    """
    r = np.asarray(importance, dtype=np.float64)
    n_latents, n_sources = r.shape
    total = r.sum()
    if total <= 0:
        warnings.warn("DCI: every importance is zero (no latent is used by any predictor); d = c = 0",
                      UserWarning, stacklevel=3)
        return 0.0, 0.0
    per_latent = 1.0 - _normalised_entropy(r, axis=1)
    d = float(per_latent @ (r.sum(axis=1) / total))
    per_source = 1.0 - _normalised_entropy(r, axis=0)
    return d, float(per_source.mean())


def _normalised_entropy(r: np.ndarray, axis: int) -> np.ndarray:
    """Entropy of each line of r along ``axis`` in base (its length); an all-zero line counts as uniform (1)."""
    n = r.shape[axis]
    if n == 1:
        return np.zeros(r.shape[1 - axis])
    sums = r.sum(axis=axis, keepdims=True)
    p = np.where(sums > 0, r / np.where(sums > 0, sums, 1.0), 1.0 / n)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, -p * np.log(p), 0.0)
    return terms.sum(axis=axis) / np.log(n)


def _split_sizes(n: int, predictor: str, n_train: int | None, n_test: int | None) -> tuple[int, int]:
    if predictor == "gbt":
        default_train, default_test = GBT_SPLIT if n >= sum(GBT_SPLIT) else (n - n // 3, n // 3)
    elif predictor == "forest":
        default_test = max(1, round(n * FOREST_TEST_FRACTION))
        default_train = n - default_test
    else:
        raise ValueError(f"predictor must be 'gbt' or 'forest', got {predictor!r}")
    n_train = default_train if n_train is None else n_train
    n_test = default_test if n_test is None else n_test
    if n_train < 2 or n_test < 1 or n_train + n_test > n:
        raise ValueError(
            f"DCI needs n_train >= 2, n_test >= 1 and n_train + n_test <= N = {n}, got {n_train} and {n_test}"
        )
    return n_train, n_test


def _make_model(predictor: str, random_state: int | None):
    if predictor == "gbt":
        from sklearn.ensemble import GradientBoostingClassifier

        return GradientBoostingClassifier(random_state=random_state)
    from sklearn.ensemble import RandomForestClassifier

    return RandomForestClassifier(
        n_estimators=100, max_depth=10, criterion="entropy", random_state=random_state, n_jobs=1
    )
