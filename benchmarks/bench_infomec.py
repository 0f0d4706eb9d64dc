"""InfoMEC: latentquant versus the scikit-learn formulation, timed in the same run on the same data.

The scikit-learn formulation is the reference's: per source, ``mutual_info_classif`` (k = 10) on the
standardised continuous latents or ``mutual_info_score`` on discrete ones, and ``LogisticRegression(penalty
none, class_weight="balanced", lbfgs, tol 1e-4, max_iter 100)`` + ``log_loss`` on the latents and on an
all-zero design. scikit-learn runs with one BLAS thread, its fastest setting: with OpenBLAS's default
threads it took 1.1x (continuous) to 1.8x (discrete) as long on 2 idle cores, and up to 70x on a busy
machine, which would flatter latentquant (``--default-blas`` times that too). latentquant also keeps BLAS
to one thread and runs its sources side by side on threads (``n_jobs``); both its default (every core) and
``n_jobs=1`` are timed.

    python benchmarks/bench_infomec.py                  # N = 10,000 and 50,000
    python benchmarks/bench_infomec.py --quick          # N = 2,000 only
"""

from __future__ import annotations

import argparse
import time
import warnings
from functools import partial

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_selection import mutual_info_classif
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss, mutual_info_score
from sklearn.preprocessing import LabelEncoder, OneHotEncoder, StandardScaler
from threadpoolctl import threadpool_limits

from latentquant.metrics import infomec

SOURCE_SIZES = (10, 10, 10, 8, 4, 15)
N_LATENTS = 12


def make_data(n: int, discrete: bool, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """6 discrete sources; 12 latents: 6 noisy, partly mixed copies of the sources, 3 noise, 3 nearly dead."""
    rng = np.random.default_rng(seed)
    sources = np.stack([rng.integers(0, size, n) for size in SOURCE_SIZES], axis=1)
    scaled = sources / (np.array(SOURCE_SIZES) - 1)
    latents = np.empty((n, N_LATENTS))
    latents[:, :6] = scaled + 0.1 * rng.standard_normal((n, 6))
    latents[:, 0] += 0.3 * scaled[:, 1]
    latents[:, 6:9] = rng.standard_normal((n, 3))
    latents[:, 9:] = 1e-3 * rng.standard_normal((n, 3))
    if discrete:
        latents = np.round(latents * 4)  # quantized codes: a few distinct float values per latent
    return sources, latents


def sklearn_infomec(sources: np.ndarray, latents: np.ndarray, discrete: bool) -> dict:
    """The reference formulation, with a fixed jitter seed so that the values are comparable."""
    labels = np.stack([LabelEncoder().fit_transform(s) for s in sources.T], axis=1)
    k = labels.shape[1]
    nmi = np.empty((k, latents.shape[1]))
    standardized = StandardScaler().fit_transform(latents)
    codes = np.stack([LabelEncoder().fit_transform(z) for z in latents.T], axis=1)
    for i in range(k):
        if discrete:
            nmi[i] = [mutual_info_score(labels[:, i], codes[:, j]) for j in range(codes.shape[1])]
        else:
            nmi[i] = mutual_info_classif(
                standardized, labels[:, i], discrete_features=False, n_neighbors=10, random_state=0
            )
        nmi[i] /= mutual_info_score(labels[:, i], labels[:, i])
    ranges = np.ptp(latents, axis=0)
    active = ranges > 0 if discrete else ranges > ranges.max() / 20
    pruned = nmi[:, active]
    a = pruned.shape[1]
    infom = (np.mean(pruned.max(axis=0) / pruned.sum(axis=0)) - 1 / k) / (1 - 1 / k)
    infoc = (np.mean(pruned.max(axis=1) / pruned.sum(axis=1)) - 1 / a) / (1 - 1 / a)
    design = OneHotEncoder(sparse_output=False).fit_transform(latents) if discrete else standardized
    scores = []
    for i in range(k):
        loss = _logistic_log_loss(design, labels[:, i])
        null = _logistic_log_loss(np.zeros_like(latents), labels[:, i])
        scores.append((null - loss) / null)
    return {"infom": infom, "infoe": float(np.mean(scores)), "infoc": infoc}


def _logistic_log_loss(x: np.ndarray, y: np.ndarray) -> float:
    model = LogisticRegression(C=np.inf, class_weight="balanced", tol=1e-4, max_iter=100, solver="lbfgs")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(x, y)
    return log_loss(y, model.predict_proba(x))


def timed(fn, repeats: int = 1) -> tuple[float, object]:
    best, result = np.inf, None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def run_case(n: int, discrete: bool, default_blas: bool) -> None:
    sources, latents = make_data(n, discrete)
    with threadpool_limits(limits=1, user_api="blas"):
        t_sklearn, ref = timed(lambda: sklearn_infomec(sources, latents, discrete))
    extra = ""
    if default_blas:
        t_default, _ = timed(lambda: sklearn_infomec(sources, latents, discrete))
        extra = f" (default BLAS threads {t_default:.2f} s)"
    t_serial, serial = timed(partial(infomec, sources, latents, discrete_latents=discrete, n_jobs=1), repeats=3)
    t_ours, ours = timed(partial(infomec, sources, latents, discrete_latents=discrete), repeats=3)
    assert all(ours[key] == serial[key] for key in ("infom", "infoe", "infoc")), "threads changed the values"
    diff = {key: abs(ours[key] - ref[key]) for key in ("infom", "infoe", "infoc")}
    kind = "discrete  " if discrete else "continuous"
    print(
        f"N={n:>6} {kind} | sklearn {t_sklearn:6.2f} s | latentquant {t_ours:6.3f} s"
        f" | speed-up {t_sklearn / t_ours:5.1f}x (n_jobs=1: {t_serial:6.3f} s, {t_sklearn / t_serial:5.1f}x)"
        f" | max |diff| infom {diff['infom']:.1e} infoe {diff['infoe']:.1e} infoc {diff['infoc']:.1e}{extra}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N = 2,000 only")
    parser.add_argument("--default-blas", action="store_true", help="also time sklearn with default threads")
    args = parser.parse_args()
    sizes = (2_000,) if args.quick else (10_000, 50_000)
    print(f"{N_LATENTS} latents, {len(SOURCE_SIZES)} sources {SOURCE_SIZES}")
    for n in sizes:
        run_case(n, discrete=False, default_blas=args.default_blas)
    run_case(sizes[-1], discrete=True, default_blas=args.default_blas)


if __name__ == "__main__":
    main()
