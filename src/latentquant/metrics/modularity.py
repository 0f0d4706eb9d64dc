"""Modularity and explicitness (Ridgeway & Mozer 2018), as disentanglement_lib computes them."""

from __future__ import annotations

import warnings

import numpy as np

from . import _inputs
from .dci import GBT_SPLIT
from .mig import discretised_latents, mutual_info_matrix


def modularity_explicitness(
    sources: np.ndarray,
    latents: np.ndarray,
    *,
    n_bins: int = 20,
    discrete_latents: bool | None = None,
    n_train: int | None = None,
    n_test: int | None = None,
    random_state: int | None = 0,
) -> dict:
    """Modularity from the latent-source mutual information, explicitness from linear probes.

    The arrays are split at random into ``n_train`` training and ``n_test`` test samples (default 10,000 and
    5,000, disentanglement_lib's draws, or 2/3 : 1/3 of N when N < 15,000).

    - **Modularity.** m[j, k] = I(z_j; s_k) in nats on the training split, latents discretised as in
      :func:`~latentquant.metrics.mig` (``n_bins`` histogram bins). With t_j = max_k m[j, k]^2, latent j's
      modularity is 1 - (sum_k m[j, k]^2 - t_j) / (t_j (K - 1)), and 0 when t_j = 0; ``modularity`` is the
      mean over latents. 1 when every latent informs about one source only.
    - **Explicitness.** Latents are standardised with training statistics; for each source a scikit-learn
      ``LogisticRegression()`` (its defaults) is fitted on the training split, and the one-vs-rest ROC AUC of
      each class's predicted probability is averaged over classes (macro). ``explicitness_train`` and
      ``explicitness_test`` are the means over sources. Chance is 0.5, not 0.

    Returns ``{"modularity", "explicitness_train", "explicitness_test": float, "mutual_info": (D, K) array,
    "n_train", "n_test": int}``. Needs K >= 2 sources. Raises ``ValueError`` for a source with fewer than 2
    classes in the training split, impossible split sizes, a constant source, non-finite values, mismatched
    or too few samples, or wrong dimensions.
    """
    source_array, latent_array = _inputs.paired_arrays(sources, latents, "modularity/explicitness")
    if source_array.shape[1] < 2:
        raise ValueError(f"modularity needs at least 2 sources (it rescales by K - 1), got {source_array.shape[1]}")
    codes, n_classes = _inputs.encoded_sources(source_array, "modularity/explicitness")
    n = codes.shape[0]
    default_train, default_test = GBT_SPLIT if n >= sum(GBT_SPLIT) else (n - n // 3, n // 3)
    n_train = default_train if n_train is None else n_train
    n_test = default_test if n_test is None else n_test
    if n_train < 2 or n_test < 1 or n_train + n_test > n:
        raise ValueError(f"modularity/explicitness needs n_train >= 2, n_test >= 1 and n_train + n_test <= N = {n}, "
                         f"got {n_train} and {n_test}")
    train, test = _inputs.train_test_indices(n, n_train, n_test, random_state)

    latent_codes, n_codes = discretised_latents(latent_array[train], n_bins, discrete_latents)
    mi = mutual_info_matrix(codes[train], n_classes, latent_codes, n_codes).T  # (D, K)

    z = latent_array.astype(np.float64)
    mean, std = z[train].mean(axis=0), z[train].std(axis=0)
    std[std == 0] = 1.0  # a constant latent stays 0 instead of becoming NaN
    z = (z - mean) / std
    train_auc, test_auc = [], []
    for k in range(codes.shape[1]):
        a, b = _explicitness(z[train], codes[train, k], z[test], codes[test, k], random_state, k)
        train_auc.append(a)
        test_auc.append(b)
    return {
        "modularity": modularity(mi),
        "explicitness_train": float(np.mean(train_auc)),
        "explicitness_test": float(np.mean(test_auc)),
        "mutual_info": mi,
        "n_train": n_train,
        "n_test": n_test,
    }


def modularity(mutual_info: np.ndarray) -> float:
    """Mean over latents (rows of the (D, K) matrix) of 1 - (sum_k m^2 - max_k m^2) / (max_k m^2 (K - 1)),
    with 0 for a latent that has no information about any source."""
    squared = np.square(np.asarray(mutual_info, dtype=np.float64))
    top = squared.max(axis=1)
    informed = top > 0
    score = np.zeros(squared.shape[0])
    score[informed] = 1.0 - (squared[informed].sum(axis=1) - top[informed]) / (top[informed] * (squared.shape[1] - 1))
    return float(score.mean())


def _explicitness(
    x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, random_state: int | None,
    k: int,
) -> tuple[float, float]:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    if np.unique(y_train).size < 2:
        raise ValueError(f"source {k} has a single class in the training split; use more samples")
    with warnings.catch_warnings():
        # lbfgs's 100 iterations rarely reach its tolerance on separable classes; the probabilities rank
        # the samples the same well before that.
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = LogisticRegression(random_state=random_state).fit(x_train, y_train)
    return (_macro_auc(y_train, model.predict_proba(x_train), model.classes_),
            _macro_auc(y_test, model.predict_proba(x_test), model.classes_))


def _macro_auc(labels: np.ndarray, proba: np.ndarray, classes: np.ndarray) -> float:
    """Mean over classes of the ROC AUC of 'is class c' against p(c | x), over classes with both outcomes
    present (a class missing from a split has no AUC)."""
    from scipy.stats import rankdata

    aucs = []
    for column, c in enumerate(classes):
        positive = labels == c
        n_pos = int(positive.sum())
        n_neg = positive.size - n_pos
        if n_pos == 0 or n_neg == 0:
            continue
        # Mann-Whitney: the AUC is the normalised rank sum of the positives (ties count one half).
        ranks = rankdata(proba[:, column])
        aucs.append((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
    return float(np.mean(aucs)) if aucs else float("nan")
