"""DCI: disentanglement, completeness and informativeness (Eastwood & Williams 2018)."""

from __future__ import annotations

import contextlib
import warnings
from typing import Literal

import numpy as np

from . import _inputs, _pool

Predictor = Literal["gbt", "forest", "hist"]
PREDICTORS = ("gbt", "forest", "hist")
# disentanglement_lib draws 10,000 training and 5,000 test points; Tripod splits its 10,000 points 90/10.
GBT_SPLIT = (10_000, 5_000)
FOREST_TEST_FRACTION = 0.1
# Both originals train on at most 10,000 points; the forest's 90 % of a large N ran for over 20 minutes at
# N = 1,000,000.
MAX_TRAIN = 10_000


def dci(
    sources: np.ndarray,
    latents: np.ndarray,
    *,
    predictor: Predictor = "gbt",
    n_train: int | None = None,
    n_test: int | None = None,
    random_state: int | None = 0,
    max_train: int | None = MAX_TRAIN,
    n_jobs: int | None = None,
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
    ``RandomForestClassifier(n_estimators=100, max_depth=10, criterion="entropy")`` on a 90/10 split.
    ``predictor="hist"`` is a faster stand-in for gbt, for exploration: ``HistGradientBoostingClassifier`` with
    gbt's shape (100 rounds, learning rate 0.1, depth 3, no early stopping), features binned into 255 quantile
    bins, importances the split gains summed per feature; it uses gbt's split. Unless given, the split sizes
    are those; when N is too small for 10,000 + 5,000, the gbt split becomes 2/3 : 1/3 of N. A default
    training split larger than ``max_train`` (the forest's 90 % when N > 11,111) is cut to its first
    ``max_train`` points, with a warning; ``max_train=None`` keeps it whole, and an explicit ``n_train`` is
    never cut. The split is a seeded random permutation (``random_state``, which also seeds the ensembles).
    The per-source fits are independent and run on ``n_jobs`` threads (``None``: one per CPU, at most one
    per source and at most ``OMP_NUM_THREADS`` when that is set); each fit is the same whatever the threads,
    so the values do not depend on ``n_jobs``.
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
    n_train, n_test = _split_sizes(n, predictor, n_train, n_test, max_train)
    train, test = _inputs.train_test_indices(n, n_train, n_test, random_state)
    x = latent_array.astype(np.float64)
    x_train, x_test = x[train], x[test]

    def fit(k: int) -> tuple[np.ndarray, float, float]:
        return _fit_source(predictor, random_state, x_train, x_test, codes[train, k], codes[test, k])

    workers = min(_pool.resolve_jobs(n_jobs), codes.shape[1])
    # scikit-learn builds trees without the GIL, so threads fit sources side by side; the histogram learner's
    # own OpenMP threads would then compete with them and are held at one.
    with _openmp_threads(1 if predictor == "hist" and workers > 1 else None):
        fits = _pool.thread_map(fit, range(codes.shape[1]), n_jobs=workers)
    importance = np.stack([f[0] for f in fits], axis=1)
    train_acc = [f[1] for f in fits]
    test_acc = [f[2] for f in fits]

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


def _split_sizes(
    n: int, predictor: str, n_train: int | None, n_test: int | None, max_train: int | None = None
) -> tuple[int, int]:
    if predictor in ("gbt", "hist"):
        default_train, default_test = GBT_SPLIT if n >= sum(GBT_SPLIT) else (n - n // 3, n // 3)
    elif predictor == "forest":
        default_test = max(1, round(n * FOREST_TEST_FRACTION))
        default_train = n - default_test
    else:
        raise ValueError(f"predictor must be one of {', '.join(map(repr, PREDICTORS))}, got {predictor!r}")
    if max_train is not None and max_train < 2:
        raise ValueError(f"max_train must be None or at least 2, got {max_train}")
    if n_train is None and max_train is not None and default_train > max_train:
        warnings.warn(
            f"DCI ({predictor}): training on max_train = {max_train} of the {default_train} points of the default"
            " training split (pass max_train=None to use them all)",
            UserWarning,
            stacklevel=3,
        )
        default_train = max_train
    n_train = default_train if n_train is None else n_train
    n_test = default_test if n_test is None else n_test
    if n_train < 2 or n_test < 1 or n_train + n_test > n:
        raise ValueError(
            f"DCI needs n_train >= 2, n_test >= 1 and n_train + n_test <= N = {n}, got {n_train} and {n_test}"
        )
    return n_train, n_test


def _openmp_threads(limit: int | None) -> contextlib.AbstractContextManager:
    if limit is None:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits  # installed with scikit-learn

    return threadpool_limits(limits=limit, user_api="openmp")


def _fit_source(
    predictor: str,
    random_state: int | None,
    x_train: np.ndarray,
    x_test: np.ndarray,
    y_train: np.ndarray,
    y_test: np.ndarray,
) -> tuple[np.ndarray, float, float]:
    """(importance per latent, train accuracy, test accuracy) of one source's classifier."""
    model = _make_model(predictor, random_state)
    model.fit(x_train, y_train)
    if predictor == "hist":
        importance = _split_gains(model, x_train.shape[1])
    else:
        importance = np.abs(model.feature_importances_)
    return (
        importance,
        float(np.mean(model.predict(x_train) == y_train)),
        float(np.mean(model.predict(x_test) == y_test)),
    )


def _split_gains(model, n_features: int) -> np.ndarray:
    """Total split gain per feature over every tree, normalised to sum 1 (0 everywhere if no tree splits).

    ``HistGradientBoostingClassifier`` has no ``feature_importances_``; the gains are the analogue of the
    impurity decreases that gbt's importances sum (its trees sit in the private ``_predictors``).
    """
    gains = np.zeros(n_features)
    for round_trees in model._predictors:
        for tree in round_trees:
            split = ~tree.nodes["is_leaf"].astype(bool)
            np.add.at(gains, tree.nodes["feature_idx"][split], tree.nodes["gain"][split])
    total = gains.sum()
    return gains / total if total > 0 else gains


def _make_model(predictor: str, random_state: int | None):
    if predictor == "gbt":
        from sklearn.ensemble import GradientBoostingClassifier

        return GradientBoostingClassifier(random_state=random_state)
    if predictor == "hist":
        from sklearn.ensemble import HistGradientBoostingClassifier

        return HistGradientBoostingClassifier(
            learning_rate=0.1, max_iter=100, max_depth=3, max_leaf_nodes=None, min_samples_leaf=1,
            l2_regularization=0.0, early_stopping=False, random_state=random_state,
        )
    from sklearn.ensemble import RandomForestClassifier

    return RandomForestClassifier(
        n_estimators=100, max_depth=10, criterion="entropy", random_state=random_state, n_jobs=1
    )
