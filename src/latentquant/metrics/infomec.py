"""InfoMEC: modularity (InfoM), explicitness (InfoE) and compactness (InfoC) of a representation.

Hsu et al. 2023, "Disentanglement via Latent Quantization". Definitions, degenerate cases and tolerances are
in ``spec/metrics.md``; the default options reproduce the authors' standalone ``infomec.py`` (scikit-learn's
``mutual_info_classif`` / ``mutual_info_score`` and ``LogisticRegression``) with much faster estimators
(``_mi.py``).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Literal

import numpy as np

from . import _inputs, _mi, _pool, _significance

Activity = Literal["reference", "training", "tripod"]
NmiFloor = Literal["none", "permutation"]
_EPS = np.finfo(np.float64).eps


def infomec(
    sources: np.ndarray,
    latents: np.ndarray,
    *,
    discrete_latents: bool | None = None,
    n_neighbors: int = 10,
    activity: Activity = "reference",
    random_state: int | None | np.random.RandomState = 0,
    infoe_holdout: float | None = None,
    nmi_floor: NmiFloor = "none",
    n_permutations: int = 20,
    floor_z: float = 8.0,
    infoe_max_iter: int = 100,
    n_jobs: int | None = None,
) -> dict:
    """InfoM, InfoE and InfoC of ``latents`` (N, D) with respect to ground-truth ``sources`` (N, K).

    Each source column is label-encoded by its sorted unique values. With H(s_k) the plug-in entropy:

    - ``nmi[k, j] = I(s_k; z_j) / H(s_k)``. Discrete latents: plug-in MI of the contingency table.
      Continuous latents: each standardised, then the k-NN estimator of Ross (2014) with ``n_neighbors``
      neighbours, negative estimates clipped to 0, after scikit-learn's 1e-10-scale tie-breaking jitter
      (drawn from ``random_state``; ``None`` draws fresh noise, as the reference does).
    - Active latents (``activity="reference"``): discrete: range > 0; continuous: range > max range / 20.
      ``activity="training"``: range > max range / 8 for every latent (the reference training loop's rule).
      ``activity="tripod"``: interquartile range (IQR) > 0.1 for discrete latents (Tripod's codes lie in
      [-1, 1]), IQR > max IQR / 10 for continuous ones (Tripod's ``infomec.py``).
    - ``infom`` = (mean over active latents of max_k nmi / sum_k nmi - 1/K) / (1 - 1/K).
    - ``infoc`` = (mean over sources of max_j nmi / sum_j nmi over active latents - 1/A) / (1 - 1/A).
    - ``infoe`` = mean over sources of (L0 - L) / L0, L the in-sample log-loss of an unpenalised multinomial
      logistic regression (balanced class weights, intercept, lbfgs, tol 1e-4, max_iter 100) on all latents
      (discrete: one-hot; continuous: standardised), L0 = log C that of the same model on no features;
      ``infoe_max_iter`` is the solver's iteration cap (the QLAE code's 100; FactorQVAE's code uses 500).
      ``infoe_holdout=f`` instead fits on a seeded split of each source (stratified by class, drawn from
      ``random_state``) and scores L on the held-out fraction f; L0 stays log C (the null model predicts the
      uniform distribution), and the score can then be negative.
    - ``infom_gap`` = mean over active latents of the largest minus the second-largest nmi over sources;
      ``infoc_gap`` = mean over sources of the largest minus the second-largest nmi over *all* latents
      (the reference training loop's "gap" variants, not rescaled; ``nan`` with a single latent).
    - ``nmi_floor`` (a permutation null; ``"none"``, the default, is the authors' formulation): a source
      whose largest NMI is not above mean + ``floor_z`` standard deviations of that largest NMI over
      ``n_permutations`` shuffles of the source (same latents, same jitter) is *captured by no latent*; an
      active latent whose largest NMI is not above its own such floor *informs about no source*.
      ``"permutation"`` zeroes, for InfoC, the rows of uncaptured sources and, for InfoM, the columns of
      uninformative latents: each metric's own lines of pure estimator noise count as uniform (the
      degenerate rules above) instead of as whatever pattern the jitter gave them. Lines above their floor
      are used exactly as without it, so InfoC is unchanged whenever every source is captured and InfoM
      whenever every active latent informs. The shuffles are drawn from ``random_state`` after the jitter
      and the InfoE holdout; they cost ``n_permutations`` more NMI estimates (continuous: about 10x the
      time of InfoMEC; discrete: a few percent).

    ``n_jobs`` threads run the sources' NMI rows and regressions side by side (``None``: every core this
    process may use; 1: one after another); each source's work is the same either way, so the values do not
    depend on it.

    ``discrete_latents=None`` treats integer and boolean latents as discrete and floats as continuous; pass
    ``True`` for quantized float codes. Returns ``{"infom", "infoe", "infoc", "infom_gap", "infoc_gap": float,
    "nmi": (K, D) array (never floored), "active_latents": (D,) bool array, "captured_sources": (K,) bool
    array, "informative_latents": (D,) bool array}``; the last two say which lines InfoC and InfoM counted as
    carrying information (without a floor: a non-zero line).

    Degenerate cases: a source captured by no active latent adds 1/A to the InfoC mean, an active latent
    with no information about any source adds 1/K to the InfoM mean (each with a warning); a single active
    latent gives ``infoc = nan`` with a warning. Raises ``ValueError`` for no active latent, fewer than two
    sources, a constant source, non-finite values, mismatched or too few samples, or wrong dimensions.
    """
    if nmi_floor not in ("none", "permutation"):
        raise ValueError(f"nmi_floor must be 'none' or 'permutation', got {nmi_floor!r}")
    if n_permutations < 2:
        raise ValueError(f"n_permutations must be at least 2 (the floor uses their spread), got {n_permutations}")
    if infoe_max_iter < 1:
        raise ValueError(f"infoe_max_iter must be at least 1, got {infoe_max_iter}")
    floor = None if nmi_floor == "none" else (n_permutations, float(floor_z))
    jobs = _pool.resolve_jobs(n_jobs)
    with _mi.single_threaded_blas():
        return _infomec(sources, latents, discrete_latents, n_neighbors, activity, random_state, infoe_holdout,
                        floor, infoe_max_iter, jobs)


def _infomec(
    sources: np.ndarray,
    latents: np.ndarray,
    discrete_latents: bool | None,
    n_neighbors: int,
    activity: Activity,
    random_state: int | None | np.random.RandomState,
    infoe_holdout: float | None,
    floor: tuple[int, float] | None,
    infoe_max_iter: int,
    n_jobs: int,
) -> dict:
    source_array, latent_array = _inputs.paired_arrays(sources, latents, "InfoMEC")
    if source_array.shape[1] < 2:
        raise ValueError(f"InfoMEC needs at least 2 sources (InfoM rescales by 1 - 1/K), got {source_array.shape[1]}")
    if n_neighbors < 1:
        raise ValueError(f"n_neighbors must be at least 1, got {n_neighbors}")
    if infoe_holdout is not None and not 0 < infoe_holdout < 1:
        raise ValueError(f"infoe_holdout must be None or a fraction in (0, 1), got {infoe_holdout}")
    discrete = _inputs.resolve_discrete(latent_array, discrete_latents)
    codes, n_classes = _inputs.encoded_sources(source_array, "InfoMEC (its NMI divides by the source entropy)")
    active = active_latents(latent_array, discrete=discrete, activity=activity)

    design = _design_matrix(latent_array, discrete)  # the NMI of discrete latents uses its codes too
    nmi, estimate = _nmi_matrix(codes, n_classes, design, n_neighbors, random_state, n_jobs)
    # The holdout is drawn after the jitter, so a shared RandomState gives the same NMI with or without it.
    infoe = _explicitness(codes, n_classes, design, infoe_max_iter, n_jobs, infoe_holdout, random_state)
    captured, informative = nmi.max(axis=1) > 0, nmi.max(axis=0) > 0
    if floor is not None:
        captured, informative = _permutation_floor(nmi, estimate, codes, active, floor, random_state)
    return {
        # Each metric floors its own lines only, so that InfoC stays exactly the authors' whenever every
        # source is captured (zeroing noise latents too was more stable but moved InfoC by up to 0.07 on
        # such cases, by removing the plug-in estimator's positive bias).
        "infom": _modularity(np.where(informative, nmi, 0.0)[:, active], np.nonzero(active)[0],
                             None if floor is None else ~informative[active]),
        "infoe": infoe,
        "infoc": _compactness(np.where(captured[:, None], nmi, 0.0)[:, active], None if floor is None else ~captured),
        "infom_gap": float(_inputs.top_two_gap(nmi[:, active], axis=0).mean()),
        "infoc_gap": float(_inputs.top_two_gap(nmi, axis=1).mean()) if nmi.shape[1] > 1 else float("nan"),
        "nmi": nmi,
        "active_latents": active,
        "captured_sources": captured,
        "informative_latents": informative,
    }


def _permutation_floor(
    nmi: np.ndarray,
    estimate: Callable[[np.ndarray], np.ndarray],
    codes: np.ndarray,
    active: np.ndarray,
    floor: tuple[int, float],
    random_state: int | None | np.random.RandomState,
) -> tuple[np.ndarray, np.ndarray]:
    """(captured sources, informative latents) under the permutation floor, with a warning naming what fell."""
    n_permutations, z = floor
    if isinstance(random_state, np.random.RandomState):
        rng = random_state
    else:  # not the jitter's stream: the shuffles must not repeat the jitter's draws
        rng = np.random.RandomState(None if random_state is None else [random_state, 0x5EED])
    # Inactive latents are left out of the null: InfoC and InfoM never look at them, and a dead latent with
    # rounding-noise NMI would otherwise set the floor of every source.
    significance = _significance.line_significance(
        nmi[:, active], lambda labels: estimate(labels)[:, active], codes, n_permutations=n_permutations, z=z, rng=rng
    )
    informative = np.zeros(nmi.shape[1], dtype=bool)
    informative[active] = significance.latents
    fallen = [f"source {k} (largest NMI {nmi[k, active].max():.4f}, floor {significance.source_floor[k]:.4f})"
              for k in np.flatnonzero(~significance.sources)]
    fallen += [f"latent {j} (largest NMI {nmi[:, j].max():.4f}, floor {f:.4f})"
               for j, f, ok in zip(np.flatnonzero(active), significance.latent_floor, significance.latents,
                                   strict=True) if not ok]
    if fallen:
        warnings.warn(f"below the permutation floor, counted as carrying no information: {', '.join(fallen)}",
                      UserWarning, stacklevel=4)
    return significance.sources, informative



# ------------------------------------------------------------------------------------------------------------
# Active latents and standardisation (input checks are _inputs.py's, shared with every metric)
# ------------------------------------------------------------------------------------------------------------


def active_latents(latents: np.ndarray, *, discrete: bool, activity: Activity = "reference") -> np.ndarray:
    """Boolean mask of latents whose range (max - min over samples) marks them as used.

    ``"reference"``: discrete latents need range > 0, continuous ones range > max range / 20 (the reference
    ``infomec.py``). ``"training"``: range > max range / 8 for any latent (the reference training loop).
    ``"tripod"``: the interquartile range (75th minus 25th percentile, linear interpolation) instead of the
    range; discrete latents need IQR > 0.1 (an absolute threshold: Tripod's codes lie in [-1, 1]),
    continuous ones IQR > max IQR / 10. Raises ``ValueError`` when no latent is active.
    """
    # Halved first: a column spanning ±1.7e308 has a range that overflows float64, which would make every range
    # compare as inf (or nan) and every latent look inactive. Halving scales every range alike, so the
    # thresholds pick the same latents (Tripod's absolute 0.1 becomes 0.05 on the halved scale).
    values = np.asarray(latents, dtype=np.float64) / 2
    if activity == "tripod":
        q25, q75 = np.percentile(values, [25, 75], axis=0)
        iqr = q75 - q25
        active = iqr > 0.05 if discrete else iqr > iqr.max() / 10
        if not active.any():
            raise ValueError("no active latent: every interquartile range is below Tripod's threshold")
        return active
    ranges = np.ptp(values, axis=0)
    if activity == "reference":
        active = ranges > 0 if discrete else ranges > ranges.max() / 20
    elif activity == "training":
        active = ranges > ranges.max() / 8
    else:
        raise ValueError(f"activity must be 'reference', 'training' or 'tripod', got {activity!r}")
    if not active.any():
        raise ValueError("no active latent: every latent is constant (or all ranges are below the threshold)")
    return active


def standardize(x: np.ndarray) -> np.ndarray:
    """Columns shifted to zero mean and scaled to unit variance; constant columns become 0.

    A column counts as constant when its variance is within rounding error of 0 (scikit-learn's
    ``StandardScaler`` rule), so a dead latent does not turn into amplified rounding noise.
    """
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[0]
    mean = x.mean(axis=0)
    var = x.var(axis=0)
    constant = var <= n * _EPS * var + (n * mean * _EPS) ** 2
    scale = np.where(constant, 1.0, np.sqrt(var))
    return (x - mean) / scale


# ------------------------------------------------------------------------------------------------------------
# NMI, InfoM, InfoC
# ------------------------------------------------------------------------------------------------------------


def _nmi_matrix(
    codes: np.ndarray,
    n_classes: list[int],
    design: np.ndarray | _mi.OneHotCodes,
    n_neighbors: int,
    random_state: int | None | np.random.RandomState,
    n_jobs: int = 1,
) -> tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]:
    """(K, D) matrix of I(s_k; z_j) / H(s_k), and the estimator that made it: label codes (N, K) -> (K, D).

    ``design`` is :func:`_design_matrix`'s: the latents' codes (discrete) or the standardised latents.

    The estimator is returned so that a permutation null reuses the jittered, sorted latents: it sees
    exactly the latents the observed NMI saw.
    """
    if isinstance(design, _mi.OneHotCodes):  # discrete latents

        def mutual_info(labels: np.ndarray, k: int) -> np.ndarray:
            return _mi.plugin_mutual_info(labels, n_classes[k], design.codes, list(design.n_codes))
    else:
        # One jitter draw serves every source: the same as calling mutual_info_classif per source with a
        # fixed random_state, and the sorting of each latent is shared too.
        jittered = _mi.sklearn_jitter(design, random_state)
        columns = _mi.SortedColumns.from_columns(jittered)

        def mutual_info(labels: np.ndarray, k: int) -> np.ndarray:
            return _mi.knn_mutual_info(columns, labels, n_neighbors)

    entropy = np.array([_mi.plugin_entropy(codes[:, k], c) for k, c in enumerate(n_classes)])

    def estimate(labels: np.ndarray) -> np.ndarray:
        mi = np.stack(_pool.thread_map(lambda k: mutual_info(labels[:, k], k), range(labels.shape[1]), n_jobs=n_jobs))
        return mi / entropy[:, None]  # a permutation keeps each source's entropy

    return estimate(codes), estimate


def _rescaled_mean_ratio(
    nmi: np.ndarray, axis: int, line_names: list[str], metric: str, floored: np.ndarray | None = None
) -> float:
    """(mean of max / sum along ``axis`` - 1/n) / (1 - 1/n), n the length along ``axis``.

    A line with zero sum carries no information: it counts as uniform (ratio 1/n), with a warning unless the
    permutation floor zeroed it (``floored``), which has warned already.
    """
    n = nmi.shape[axis]
    total = nmi.sum(axis=axis)
    empty = total <= 0
    unexplained = empty if floored is None else empty & ~floored
    if unexplained.any():
        names = ", ".join(name for name, e in zip(line_names, unexplained, strict=True) if e)
        other = "source" if axis == 0 else "active latent"
        warnings.warn(
            f"{names}: zero NMI with every {other}; counted as uniform (ratio 1/{n}) in {metric}",
            UserWarning,
            stacklevel=5,  # the caller of infomec()
        )
    ratio = np.where(empty, 1.0 / n, nmi.max(axis=axis) / np.where(empty, 1.0, total))
    return float((ratio.mean() - 1.0 / n) / (1.0 - 1.0 / n))


def _modularity(active_nmi: np.ndarray, latent_indices: np.ndarray, floored: np.ndarray | None = None) -> float:
    """InfoM over the active latents (columns); K >= 2 is checked on input."""
    return _rescaled_mean_ratio(active_nmi, 0, [f"latent {j}" for j in latent_indices], "InfoM", floored)


def _compactness(active_nmi: np.ndarray, floored: np.ndarray | None = None) -> float:
    """InfoC over the sources (rows); undefined (nan, with a warning) for a single active latent."""
    if active_nmi.shape[1] == 1:
        warnings.warn(
            "InfoC is undefined with a single active latent; returning nan", UserWarning, stacklevel=4
        )
        return float("nan")
    return _rescaled_mean_ratio(active_nmi, 1, [f"source {k}" for k in range(active_nmi.shape[0])], "InfoC",
                                floored)


# ------------------------------------------------------------------------------------------------------------
# InfoE
# ------------------------------------------------------------------------------------------------------------


def _design_matrix(latents: np.ndarray, discrete: bool) -> np.ndarray | _mi.OneHotCodes:
    """Discrete latents one-hot encoded (as their label codes, which stand for the one-hot columns),
    continuous latents standardised."""
    if not discrete:
        return standardize(latents)
    codes, n_codes = zip(*(_mi.label_encode(column) for column in latents.T), strict=True)
    return _mi.OneHotCodes(np.stack(codes, axis=1), tuple(n_codes))


def _explicitness(
    codes: np.ndarray,
    n_classes: list[int],
    design: np.ndarray | _mi.OneHotCodes,
    max_iter: int = 100,
    n_jobs: int = 1,
    holdout: float | None = None,
    random_state: int | None | np.random.RandomState = None,
) -> float:
    """InfoE: mean over sources of 1 - L / log C (the null model's loss is exactly log C).

    ``holdout=f``: L is the log-loss on a held-out fraction f of each source's samples (a per-class
    stratified split drawn from ``random_state``, source by source, before any fit).
    """
    tests: list[np.ndarray | None] = [None] * len(n_classes)
    if holdout is not None:
        rng = random_state if isinstance(random_state, np.random.RandomState) else np.random.RandomState(random_state)
        for k, c in enumerate(n_classes):
            tests[k] = _stratified_holdout(codes[:, k], c, holdout, rng)
            if not tests[k].any():
                raise ValueError(f"infoe_holdout={holdout} leaves no held-out sample for source {k}; use more samples")

    def score(k: int) -> float:
        test = tests[k]
        if test is None:
            loss = _mi.balanced_logistic_log_loss(design, codes[:, k], n_classes[k], max_iter=max_iter)
        else:
            loss = _mi.balanced_logistic_log_loss(design[~test], codes[~test, k], n_classes[k], max_iter=max_iter,
                                                  evaluate_on=(design[test], codes[test, k]))
        null = _mi.null_log_loss(n_classes[k])
        return (null - loss) / null

    # A regression's cost grows with its number of classes: the largest start first.
    return float(np.mean(_pool.thread_map(score, range(len(n_classes)), n_jobs=n_jobs, costs=n_classes)))


def _stratified_holdout(labels: np.ndarray, n_classes: int, fraction: float, rng: np.random.RandomState) -> np.ndarray:
    """Mask holding out round(fraction * n_c) samples of each class c, keeping at least one in training.

    Every class must stay in the training split: the balanced weights are 1 / count, and a class the fit
    never saw would get no probability mass.
    """
    test = np.zeros(labels.size, dtype=bool)
    for c in range(n_classes):
        members = np.flatnonzero(labels == c)
        n_out = min(round(fraction * members.size), members.size - 1)
        test[rng.permutation(members)[:n_out]] = True
    return test
