"""Fast estimators behind InfoMEC.

Each function reproduces the numbers of a scikit-learn formulation (named in its docstring) with a cheaper
algorithm; ``tests/test_infomec.py`` checks them against scikit-learn on random inputs.

- :func:`plugin_mutual_info`: plug-in MI of a contingency table (``sklearn.metrics.mutual_info_score``),
  counted with ``np.bincount``.
- :func:`knn_mutual_info`: Ross (2014) k-NN estimator of I(continuous; discrete)
  (``sklearn.feature_selection.mutual_info_classif``), by sorting instead of KD-trees.
- :func:`balanced_logistic_log_loss`: in-sample log-loss of an unpenalised multinomial logistic regression
  with balanced class weights (``LogisticRegression(penalty=None, class_weight="balanced")`` + ``log_loss``).
  A one-hot design can be given as its label codes (:class:`OneHotCodes`): the same objective, evaluated
  from tables of merged latents instead of the N x (sum of levels) matrix.
"""

from __future__ import annotations

import contextlib
import functools
import heapq
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import scipy.optimize
import scipy.sparse
from scipy.special import digamma

try:  # SciPy's sparse kernels, private: used only where present (_sparse_times_dense)
    from scipy.sparse import _sparsetools
except ImportError:  # pragma: no cover
    _sparsetools = None

_EPS = np.finfo(np.float64).eps
# The k-NN radius search keeps ~8 padded rows of floats per latent alive; latents go in chunks of ~32 MB.
_CHUNK_ELEMENTS = 4_000_000


@functools.cache
def _threadpool_controller():
    try:
        from threadpoolctl import ThreadpoolController  # installed with scikit-learn
    except ImportError:
        return None
    return ThreadpoolController()


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Run the block with one BLAS thread (a no-op without ``threadpoolctl``).

    The products here are thin (classes x features x N) and memory-bound: extra BLAS threads do not speed
    them up, and on a busy machine their spin-waiting made the logistic regression 30x slower.
    """
    controller = _threadpool_controller()
    if controller is None:
        yield
        return
    with controller.limit(limits=1, user_api="blas"):
        yield


# ------------------------------------------------------------------------------------------------------------
# Labels, entropy, plug-in mutual information
# ------------------------------------------------------------------------------------------------------------


def label_encode(values: np.ndarray) -> tuple[np.ndarray, int]:
    """Map a 1-D array to codes 0..C-1 by its sorted unique values; return (codes, C)."""
    uniques, codes = np.unique(values, return_inverse=True)
    return codes.reshape(-1).astype(np.intp, copy=False), int(uniques.size)


def plugin_entropy(codes: np.ndarray, n_classes: int) -> float:
    """Empirical entropy in nats, H = -sum_c p_c log p_c with p_c the class frequencies."""
    p = np.bincount(codes, minlength=n_classes) / codes.size
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def _mutual_info_from_counts(joint: np.ndarray) -> float:
    """I = sum_ij p_ij log(p_ij / (p_i p_j)) of a contingency table of counts, clipped at 0.

    Each log ratio is log(n_ij N) - log(n_i n_j) with the products formed exactly in integers, so an exactly
    independent table gives exactly 0 (not rounding residue), which the zero-NMI rules rely on.
    """
    n = joint.sum()
    rows = joint.sum(axis=1)
    cols = joint.sum(axis=0)
    i, j = np.nonzero(joint)
    n_ij = joint[i, j]
    log_ratio = np.log((n_ij * n).astype(np.float64)) - np.log((rows[i] * cols[j]).astype(np.float64))
    # Rounding can still leave a tiny negative total for a nearly independent table; MI is non-negative.
    return max(0.0, float(n_ij @ log_ratio / n))


def plugin_mutual_info(
    labels: np.ndarray, n_labels: int, codes: np.ndarray, n_codes: list[int]
) -> np.ndarray:
    """Plug-in mutual information (nats) between one discrete label and each discrete latent.

    ``labels`` (N,) with values 0..n_labels-1; ``codes`` (N, D), column j with values 0..n_codes[j]-1.
    Returns (D,) with I(labels; codes[:, j]) of the empirical joint distribution.
    """
    out = np.empty(codes.shape[1])
    for j, n_j in enumerate(n_codes):
        flat = labels * n_j + codes[:, j]
        joint = np.bincount(flat, minlength=n_labels * n_j).reshape(n_labels, n_j)
        out[j] = _mutual_info_from_counts(joint)
    return out


# ------------------------------------------------------------------------------------------------------------
# k-NN mutual information between continuous latents and a discrete label (Ross 2014)
# ------------------------------------------------------------------------------------------------------------


def sklearn_jitter(values: np.ndarray, random_state: int | None | np.random.RandomState) -> np.ndarray:
    """Preprocess continuous features exactly as ``mutual_info_classif`` does before its estimator.

    Each column is divided by its standard deviation (near-zero deviations count as 1), then noise
    ``1e-10 * max(1, mean|x|) * N(0, 1)`` is added to break ties; the noise matrix is drawn in one call
    ``RandomState(random_state).standard_normal((N, D))``, as scikit-learn draws it.
    """
    rng = (
        random_state
        if isinstance(random_state, np.random.RandomState)
        else np.random.RandomState(random_state)
    )
    # scikit-learn reduces a Fortran-ordered copy with nanstd; the same layout and function give the same
    # last bits, which matter: the estimator's neighbour counts hinge on exact float comparisons.
    x = np.array(values, dtype=np.float64, order="F", copy=True)
    std = np.nanstd(x, axis=0)
    std[std < 10 * _EPS] = 1.0
    x /= std
    means = np.maximum(1.0, np.mean(np.abs(x), axis=0))
    x += 1e-10 * means * rng.standard_normal(size=x.shape)
    return x


@dataclass(frozen=True)
class SortedColumns:
    """Continuous latents prepared once for the k-NN estimator and reused for every source.

    ``values`` (D, N) has one row per latent, ``order`` (D, N) the argsort of each row, ``sorted`` the
    sorted rows.
    """

    values: np.ndarray
    order: np.ndarray
    sorted: np.ndarray

    @classmethod
    def from_columns(cls, x: np.ndarray) -> SortedColumns:
        values = np.ascontiguousarray(np.asarray(x, dtype=np.float64).T)
        order = np.argsort(values, axis=1)
        return cls(values, order, np.take_along_axis(values, order, axis=1))


def _small_uint(codes: np.ndarray, n_classes: int) -> np.ndarray:
    # numpy's stable sort is a linear-time radix sort for integers of 16 bits or fewer.
    if n_classes <= 1 << 8:
        return codes.astype(np.uint8)
    if n_classes <= 1 << 16:
        return codes.astype(np.uint16)
    return codes


@dataclass(frozen=True)
class _ClassLayout:
    """Where each class sits once the points are grouped by class and sorted by value within a class.

    Class c occupies [starts[c], starts[c] + sizes[c]) of the grouped order. The padded order used for
    neighbour gaps puts k copies of -inf before and k of +inf after every class, so that any gap reaching
    out of its class comes out as +inf without masks: ``padded_index`` maps grouped to padded positions,
    ``template`` holds the padding (real slots are overwritten).
    """

    sizes: np.ndarray
    starts: np.ndarray
    padded_index: np.ndarray
    template: np.ndarray

    @classmethod
    def build(cls, sizes: np.ndarray, k: int) -> _ClassLayout:
        starts = np.cumsum(sizes) - sizes
        owner = np.repeat(np.arange(sizes.size), sizes)
        padded_index = np.arange(sizes.sum()) + (2 * owner + 1) * k
        template = np.full(sizes.sum() + 2 * k * sizes.size, np.inf)
        block_starts = starts + 2 * k * np.arange(sizes.size)
        template[(block_starts[:, None] + np.arange(k)).ravel()] = -np.inf
        return cls(sizes, starts, padded_index, template)


def _kth_neighbour_distance(grouped: np.ndarray, layout: _ClassLayout, k: int) -> np.ndarray:
    """Distance to the k_c-th nearest other point of the same class, for values grouped by class and sorted.

    k_c = min(k, size_c - 1). The k nearest neighbours of a point in a sorted class are its a nearest on the
    left and k-a on the right for some a, so the k-th distance is min over a of max(left_a, right_{k-a}),
    where left_a at position q is the a-gap ending at q and right_b the b-gap starting at q.
    Classes small enough for scikit-learn to switch to brute force get its arithmetic instead.
    """
    padded = np.repeat(layout.template[None, :], grouped.shape[0], axis=0)
    padded[:, layout.padded_index] = grouped
    length = padded.shape[1]

    def gaps(a: int) -> np.ndarray:  # gaps(a)[t] = padded[t + a] - padded[t]
        return padded[:, a:] - padded[:, : length - a]

    window = slice(k, length - k)  # every real position, and k - a >= 0 for the left gaps
    radius = np.full((grouped.shape[0], length - 2 * k), np.inf)
    with np.errstate(invalid="ignore"):  # inf - inf inside the padding, never read back
        for a in range(k // 2 + 1):
            b = k - a
            gap_a, gap_b = gaps(a), gaps(b)
            for left, right, shift in ((gap_a, gap_b, a), (gap_b, gap_a, b)):
                left_part = left[:, k - shift : length - k - shift]
                right_part = right[:, window]
                np.minimum(radius, np.maximum(left_part, right_part), out=radius)
    radius = radius[:, layout.padded_index - k]
    _brute_force_small_classes(grouped, layout, k, radius)
    return radius


def _brute_force_small_classes(grouped: np.ndarray, layout: _ClassLayout, k: int, radius: np.ndarray) -> None:
    """Overwrite ``radius`` for classes where ``NearestNeighbors`` picks brute force (k_c >= size_c // 2).

    Brute force computes squared distances as (x_i**2 + (-2 x_i x_j)) + x_j**2, which can differ from
    (x_i - x_j)**2 in the last bits and so decide whether the k-th neighbour itself is counted later.
    """
    k_class = np.minimum(k, layout.sizes - 1)
    brute = np.flatnonzero(k_class >= layout.sizes // 2)
    if brute.size == 0:
        return
    sizes = layout.sizes[brute]
    slots = np.arange(sizes.max())
    real = slots < sizes[:, None]  # (B, width): padding slots are False
    positions = np.where(real, layout.starts[brute][:, None] + slots, layout.starts[brute][:, None])
    x = grouped[:, positions]  # (D, B, width)
    square = x * x
    dist2 = (square[..., :, None] + -2.0 * (x[..., :, None] * x[..., None, :])) + square[..., None, :]
    np.maximum(dist2, 0.0, out=dist2)
    dist2[..., ~np.broadcast_to(real[:, None, :], dist2.shape[1:])] = np.inf
    dist2.sort(axis=-1)
    # Index 0 is the point itself (distance exactly 0), so the k_c-th other point sits at index k_c.
    kth_index = np.broadcast_to(k_class[brute][:, None, None], dist2.shape[:-1] + (1,))
    kth = np.take_along_axis(dist2, kth_index, axis=-1)[..., 0]
    radius[:, positions[real]] = np.sqrt(kth)[:, real]


def _count_within(sorted_row: np.ndarray, centres: np.ndarray, radius: np.ndarray) -> np.ndarray:
    """Number of values v in ``sorted_row`` with fl((v - centre)**2) <= fl(radius**2), for each centre.

    scikit-learn's KD-tree compares squared distances, so a point one ulp beyond ``radius`` still counts
    when both squares round to the same float. That happens for a large share of the k-th neighbours
    (the radius is one ulp below their distance) and moves the estimate by ~1e-2 nats, so the rule is
    matched exactly: value-space bounds from ``searchsorted``, then each end moved until the squared
    test holds at the last point in and fails at the first point out (the set is contiguous and holds
    the centre itself).
    """
    limit = radius * radius
    lo = np.searchsorted(sorted_row, centres - radius, side="left")  # first index in
    hi = np.searchsorted(sorted_row, centres + radius, side="right")  # one past the last index in
    probe = _BoundaryProbe(sorted_row, centres, limit)
    probe.walk(lo, offset=-1, step=-1, while_inside=True)
    probe.walk(lo, offset=0, step=+1, while_inside=False)
    probe.walk(hi, offset=0, step=+1, while_inside=True)
    probe.walk(hi, offset=-1, step=-1, while_inside=False)
    return hi - lo


@dataclass(frozen=True)
class _BoundaryProbe:
    sorted_row: np.ndarray
    centres: np.ndarray
    limit: np.ndarray

    def walk(self, bound: np.ndarray, *, offset: int, step: int, while_inside: bool) -> None:
        """Step ``bound[i]`` while the point at ``bound[i] + offset`` is (or is not) inside; rarely > once."""
        n = self.sorted_row.size
        probe = bound + offset
        valid = (probe >= 0) & (probe < n)
        np.clip(probe, 0, n - 1, out=probe)
        # The first pass runs on whole arrays (no index gathers); later passes only on the few that moved.
        moving = valid & (((self.sorted_row[probe] - self.centres) ** 2 <= self.limit) == while_inside)
        which = np.flatnonzero(moving)
        while which.size:
            bound[which] += step
            probe = bound[which] + offset
            valid = (probe >= 0) & (probe < n)
            which, probe = which[valid], probe[valid]
            inside = (self.sorted_row[probe] - self.centres[which]) ** 2 <= self.limit[which]
            which = which[inside == while_inside]


def _drop_singleton_classes(columns: SortedColumns, labels: np.ndarray) -> tuple[SortedColumns, np.ndarray]:
    # The estimator ignores points whose label occurs once (they have no same-class neighbour).
    counts = np.bincount(labels)
    keep = counts[labels] > 1
    if keep.all():
        return columns, labels
    codes, _ = label_encode(labels[keep])
    return SortedColumns.from_columns(columns.values[:, keep].T), codes


def knn_mutual_info(columns: SortedColumns, labels: np.ndarray, n_neighbors: int) -> np.ndarray:
    """Ross (2014) k-NN estimate (nats) of I(z_j; label) for each continuous latent z_j, clipped at 0.

    For point i with label c (N_c points) let d_i be the distance to its k_i-th nearest neighbour among the
    other points of class c, k_i = min(k, N_c - 1), and m_i the number of points of any class (itself
    included) closer than d_i. Then I = psi(N) + <psi(k_i)> - <psi(N_c)> - <psi(m_i)>, over the points
    whose label occurs at least twice. This is ``mutual_info_classif``'s estimator, down to its float
    arithmetic (it finds d_i with KD-trees or brute force and counts within ``nextafter(d_i, 0)`` comparing
    squares); here both come from sorted arrays.
    ``columns`` should already hold the jittered values (:func:`sklearn_jitter`).
    """
    columns, labels = _drop_singleton_classes(columns, labels)
    n_latents, n = columns.values.shape
    if n == 0:
        return np.zeros(n_latents)
    counts = np.bincount(labels)
    layout = _ClassLayout.build(counts, n_neighbors)
    k_class = np.minimum(n_neighbors, counts - 1)
    psi_table = digamma(np.arange(1, n + 1, dtype=np.float64))
    constant = psi_table[n - 1] + (counts @ psi_table[k_class - 1] - counts @ psi_table[counts - 1]) / n

    small_labels = _small_uint(labels, counts.size)
    out = np.empty(n_latents)
    chunk = max(1, _CHUNK_ELEMENTS // (8 * layout.template.size))
    for first in range(0, n_latents, chunk):
        rows = slice(first, min(first + chunk, n_latents))
        order = columns.order[rows]
        # Group each latent's sorted order by class; a stable sort keeps values sorted within a class.
        by_class = np.argsort(small_labels[order], axis=1, kind="stable")
        grouped = np.take_along_axis(
            columns.values[rows], np.take_along_axis(order, by_class, axis=1), axis=1
        )
        radius = np.nextafter(_kth_neighbour_distance(grouped, layout, n_neighbors), 0.0)
        for r, j in enumerate(range(rows.start, rows.stop)):
            m = _count_within(columns.sorted[j], grouped[r], radius[r])
            out[j] = constant - psi_table[m - 1].mean()
    return np.maximum(out, 0.0)


# ------------------------------------------------------------------------------------------------------------
# Balanced multinomial logistic regression (InfoE)
# ------------------------------------------------------------------------------------------------------------


class _Design:
    """A design matrix X (N, F) plus a column of ones, dense or sparse, cut into blocks of samples.

    The ones column makes the intercept an ordinary weight. Logits are (classes, samples) so that
    per-sample reductions over classes are row-wise array operations. Working block by block keeps each
    block's logits in cache: the whole loss and gradient run ~1.6x faster than on all samples at once.
    """

    def __init__(self, x: np.ndarray | scipy.sparse.sparray, block: int) -> None:
        n = x.shape[0]
        self.sparse = scipy.sparse.issparse(x)
        self.n_columns = x.shape[1] + 1
        self.slices = [slice(start, min(start + block, n)) for start in range(0, n, block)]
        if self.sparse:
            full = scipy.sparse.hstack([scipy.sparse.csr_array(x), np.ones((n, 1))], format="csr")
            self.abs_max = np.abs(full).max(axis=0).toarray().ravel()
            # Each block also keeps its transpose as CSR: the gradient product is then a fast row-wise one.
            self.blocks = [(full[s], full[s].T.tocsr()) for s in self.slices]
        else:
            full = np.empty((x.shape[1] + 1, n))
            full[:-1] = np.asarray(x, dtype=np.float64).T
            full[-1] = 1.0
            self.abs_max = np.abs(full).max(axis=1)
            self.blocks = [full[:, s] for s in self.slices]

    def logits(self, w: np.ndarray, block: int) -> np.ndarray:
        """W (C, F + 1) -> [X 1] W^T on one block, as (C, block size)."""
        if self.sparse:
            return np.ascontiguousarray((self.blocks[block][0] @ w.T).T)
        return w @ self.blocks[block]

    def pullback(self, g: np.ndarray, block: int) -> np.ndarray:
        """G (C, block size) -> G [X 1] on one block, as (C, F + 1)."""
        if self.sparse:
            return np.asarray(self.blocks[block][1] @ g.T).T
        return g @ self.blocks[block].T


# exp(+-300) is far from overflow and underflow, so logits bounded by this need no max-shift.
_SAFE_LOGIT = 300.0
# Samples per block: about 40,000 logits (320 kB) fit in a core's L2 cache.
_BLOCK_LOGITS = 40_000
# The one-hot regression's blocks are larger: its per-sample work is a few streaming passes, so cache matters
# less than the GIL, which each of its dozen NumPy calls per block takes and gives back. In blocks of 40,000
# logits, two sources on two threads ran 1.2-1.3x as fast as one after another; in blocks of 4 million, 1.5-1.6x.
_ONE_HOT_BLOCK_LOGITS = 4_000_000


@dataclass(frozen=True)
class _SoftmaxProblem:
    """Balanced-weighted softmax cross-entropy, f = sum_i w_i (logsumexp(z_i) - z_{i, y_i}), sum_i w_i = 1.

    With two classes the first class's logit is fixed at 0 (scikit-learn's binomial parametrisation),
    otherwise every class has its own weights (its symmetric multinomial parametrisation). The label term
    sum_i w_i z_{i, y_i} is linear in the parameters, so its coefficients are summed once (``target``).
    Parameters are the (free classes, F + 1) weight matrix, intercept last, flattened.
    """

    design: _Design
    labels: np.ndarray
    weights: np.ndarray  # (N,) balanced sample weights divided by their sum
    n_free: int  # classes with their own parameters
    target: np.ndarray  # (n_free, F + 1)

    @classmethod
    def build(
        cls, x: np.ndarray | scipy.sparse.sparray, labels: np.ndarray, n_classes: int
    ) -> _SoftmaxProblem:
        n_free = 1 if n_classes == 2 else n_classes
        design = _Design(x, block=max(256, _BLOCK_LOGITS // n_free))
        counts = np.bincount(labels, minlength=n_classes)
        sample_weight = (labels.size / (n_classes * counts))[labels]
        weights = sample_weight / sample_weight.sum()
        free_labels = labels - (n_classes - n_free)
        target = np.zeros((n_free, design.n_columns))
        for block, s in enumerate(design.slices):
            onehot = np.zeros((n_free, s.stop - s.start))
            owned = np.flatnonzero(free_labels[s] >= 0)
            onehot[free_labels[s][owned], owned] = weights[s][owned]
            target += design.pullback(onehot, block)
        return cls(design, labels, weights, n_free, target)

    def n_parameters(self) -> int:
        return self.n_free * self.design.n_columns

    def _log_partition(self, z: np.ndarray, needs_shift: bool) -> tuple[np.ndarray, np.ndarray]:
        """Overwrite z with exp(z - shift); return (log sum_c exp(z_c), sum of the exps) per sample."""
        binary = self.n_free == 1  # the fixed zero logit takes part in the sum
        shift = 0.0
        if needs_shift:
            shift = z.max(axis=0)
            if binary:
                np.maximum(shift, 0.0, out=shift)
            z -= shift
        np.exp(z, out=z)
        total = z.sum(axis=0)
        if binary:
            total += np.exp(-shift)
        return np.log(total) + shift, total

    def loss_and_gradient(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        w = theta.reshape(self.n_free, -1)
        needs_shift = (np.abs(w) @ self.design.abs_max).max() >= _SAFE_LOGIT
        loss = -np.vdot(self.target, w)
        grad = -self.target
        for block, s in enumerate(self.design.slices):
            z = self.design.logits(w, block)
            log_partition, total = self._log_partition(z, needs_shift)
            loss += self.weights[s] @ log_partition
            z *= self.weights[s] / total  # now w_i * softmax probabilities
            grad = grad + self.design.pullback(z, block)
        return float(loss), grad.ravel()

    def true_class_log_proba(self, theta: np.ndarray) -> np.ndarray:
        """log p(y_i | x_i) for every sample."""
        w = theta.reshape(self.n_free, -1)
        z = np.concatenate([self.design.logits(w, block) for block in range(len(self.design.slices))], axis=1)
        if self.n_free == 1:
            z = np.vstack([np.zeros((1, z.shape[1])), z])  # class 0's fixed logit
        picked = z[self.labels, np.arange(z.shape[1])]
        shift = z.max(axis=0)
        return picked - (np.log(np.exp(z - shift).sum(axis=0)) + shift)


# ------------------------------------------------------------------------------------------------------------
# The same regression on a one-hot design, from the label codes (InfoE of discrete latents)
# ------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OneHotCodes:
    """Discrete latents as label codes, standing for their one-hot design without building it.

    Column j of ``codes`` (N, D) holds values 0..n_codes[j]-1. The design has one column per (latent, value),
    latent by latent and value by value, as ``OneHotEncoder`` lays it out. Indexing selects samples.
    """

    codes: np.ndarray
    n_codes: tuple[int, ...]
    # The code tree and what follows from it depend on the codes only: built once, then shared by every
    # source's regression (read-only), possibly on several threads.
    _cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)
    _cache_lock: threading.RLock = field(default_factory=threading.RLock, init=False, repr=False, compare=False)

    @property
    def shape(self) -> tuple[int, int]:
        return self.codes.shape[0], sum(self.n_codes)

    def _cached(self, key: str, build: Callable[[], object]) -> object:
        with self._cache_lock:
            if key not in self._cache:
                self._cache[key] = build()
            return self._cache[key]

    def code_tree(self) -> tuple[list[_Node], list[int], list[np.ndarray]]:
        """:func:`_code_tree` of these codes."""
        return self._cached("tree", lambda: _code_tree(self.codes, self.n_codes))

    def sample_order(self) -> np.ndarray:
        """Samples sorted by their code tree's root codes, the largest root's first."""
        def build() -> np.ndarray:
            nodes, roots, sample_codes = self.code_tree()
            sizes = [nodes[u].size for u in roots]
            return np.lexsort([sample_codes[r] for r in np.argsort(sizes)])  # lexsort: last key is primary
        return self._cached("order", build)

    def root_expansion(self) -> tuple[scipy.sparse.csr_array, scipy.sparse.csr_array]:
        """(E, E^T): E (root rows, design columns + 1) has a 1 where a root's row holds a latent's value.

        The roots' tables, stacked, are E @ [W^T; b] (the intercept, the last column, in the first root's
        rows), and the gradient flows back to the weights as E^T @ (the stacked tables' gradient).
        """
        def build() -> tuple[scipy.sparse.csr_array, scipy.sparse.csr_array]:
            nodes, roots, _ = self.code_tree()
            offsets = self.offsets()
            n_columns = sum(self.n_codes) + 1

            def columns_of(u: int) -> np.ndarray:  # (rows of node u, its latents): each row's design columns
                node = nodes[u]
                if node.latent is not None:
                    return (offsets[node.latent] + np.arange(node.size))[:, None]
                return np.hstack([columns_of(node.left)[node.left_codes], columns_of(node.right)[node.right_codes]])

            rows, cols, start = [], [], 0
            for r, u in enumerate(roots):
                c = columns_of(u)
                if r == 0:
                    c = np.hstack([c, np.full((c.shape[0], 1), n_columns - 1)])
                rows.append(np.repeat(start + np.arange(c.shape[0]), c.shape[1]))
                cols.append(c.ravel())
                start += c.shape[0]
            rows, cols = np.concatenate(rows), np.concatenate(cols)
            expansion = scipy.sparse.csr_array((np.ones(rows.size), (rows, cols)), shape=(start, n_columns))
            return expansion, expansion.T.tocsr()
        return self._cached("expansion", build)

    def __getitem__(self, rows: np.ndarray | slice) -> OneHotCodes:
        return OneHotCodes(self.codes[rows], self.n_codes)

    def offsets(self) -> np.ndarray:
        return np.cumsum((0, *self.n_codes[:-1])).astype(np.intp)

    def toarray(self) -> np.ndarray:
        dense = np.zeros(self.shape)
        dense[np.arange(self.shape[0])[:, None], self.codes + self.offsets()] = 1.0
        return dense


@dataclass(frozen=True)
class _Node:
    """A group of latents: one table row per combination of their values that occurs in the data.

    A leaf is one latent (``latent``); an inner node joins two nodes, its row r combining row
    ``left_codes[r]`` of the left one with ``right_codes[r]`` of the right one.
    """

    size: int
    latent: int | None = None
    left: int = -1
    right: int = -1
    left_codes: np.ndarray | None = None
    right_codes: np.ndarray | None = None


# A merged group may keep at most this fraction of N table rows: each merge saves one gather and one segment
# sum over all N samples and costs a row per combination (times its latents) in the roots' expansion.
_MAX_GROUP_FRACTION = 0.25


def _code_tree(codes: np.ndarray, n_codes: tuple[int, ...]) -> tuple[list[_Node], list[int], list[np.ndarray]]:
    """Merge latents, smallest groups first, while their realised value combinations stay few.

    Returns the nodes (children before parents), the roots, and each root's code for every sample. A sample's
    one-hot logits are the sum over roots of one table row each, so R roots cost R gathers per sample
    where the one-hot design costs D (one per latent).
    """
    n = codes.shape[0]
    nodes = [_Node(size=m, latent=j) for j, m in enumerate(n_codes)]
    heap = [(m, j) for j, m in enumerate(n_codes)]
    sample_codes = {j: codes[:, j] for j in range(len(n_codes))}
    heapq.heapify(heap)
    while len(heap) > 1:
        (m_a, a), (m_b, b) = heapq.heappop(heap), heapq.heappop(heap)
        combined = sample_codes[a].astype(np.int64) * m_b + sample_codes[b]
        if m_a * m_b <= max(4 * n, 1 << 16):
            present = np.flatnonzero(np.bincount(combined, minlength=m_a * m_b))
            remap = np.empty(m_a * m_b, dtype=np.intp)
            remap[present] = np.arange(present.size)
            merged = remap[combined]
        else:
            present, merged = np.unique(combined, return_inverse=True)
        if present.size > max(_MAX_GROUP_FRACTION * n, m_b):
            heapq.heappush(heap, (m_a, a))
            heapq.heappush(heap, (m_b, b))
            break
        left_codes, right_codes = (present // m_b).astype(np.intp), (present % m_b).astype(np.intp)
        nodes.append(
            _Node(
                size=present.size, left=a, right=b, left_codes=left_codes, right_codes=right_codes,
            )
        )
        sample_codes[len(nodes) - 1] = merged.reshape(-1).astype(np.intp, copy=False)
        del sample_codes[a], sample_codes[b]
        heapq.heappush(heap, (present.size, len(nodes) - 1))
    roots = sorted(u for _, u in heap)
    return nodes, roots, [sample_codes[u] for u in roots]


def _sparse_times_dense(matrix: scipy.sparse.csc_array | scipy.sparse.csr_array, dense: np.ndarray) -> np.ndarray:
    """``matrix @ dense`` for a float64 CSC or CSR matrix and a float64 (rows, k) array.

    SciPy's kernel is called directly where it exists: ``@`` spends tens of microseconds in Python per call,
    holding the GIL, and a regression makes dozens of these products per evaluation, so two sources'
    regressions on two threads waited on each other.
    """
    kernel = getattr(_sparsetools, f"{matrix.format}_matvecs", None) if _sparsetools is not None else None
    if kernel is None or not dense.flags.c_contiguous or dense.dtype != np.float64:
        return matrix @ dense
    m, n = matrix.shape
    out = np.zeros((m, dense.shape[1]))
    kernel(m, n, dense.shape[1], matrix.indptr, matrix.indices, matrix.data, dense.ravel(), out.ravel())
    return out


def _rows(table: np.ndarray, codes: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """table[codes], codes known to be in range: ``take`` with mode "clip" is ~4x faster than fancy indexing
    (and "raise" buffers ``out``)."""
    return np.take(table, codes, axis=0, out=out, mode="clip")


def _exp_shifted_rows(z: np.ndarray, binary: bool, needs_shift: bool) -> tuple[np.ndarray, np.ndarray]:
    """:meth:`_SoftmaxProblem._log_partition` for logits laid out (rows, classes)."""
    shift = 0.0
    if needs_shift:
        shift = z.max(axis=1)
        if binary:
            np.maximum(shift, 0.0, out=shift)
        z -= shift[:, None]
    np.exp(z, out=z)
    total = z.sum(axis=1)
    if binary:
        total += np.exp(-shift)
    return np.log(total) + shift, total


class _OneHotSoftmaxProblem:
    """:class:`_SoftmaxProblem` for a one-hot design given by its codes: the same parameters, loss and gradient.

    With one-hot features a sample's logits are a sum of table rows, one per latent. Latents whose value
    combinations are few are merged (:func:`_code_tree`) so that a sample sums one row per group instead;
    the group tables come from the weights by one sparse product (:meth:`OneHotCodes.root_expansion`), and
    the gradient flows back by segment sums and that product's transpose. When
    everything merges into one group, samples with the same combination have the same logits, so the loss
    is summed over combinations with their samples' total weight (the same objective, no per-sample work).
    Without the max-shift (the logits are bounded, see ``_SAFE_LOGIT``), exp(sum of rows) is computed as the
    product of exp'd rows, so no exponential is taken per sample.
    """

    def __init__(self, x: OneHotCodes, labels: np.ndarray, n_classes: int) -> None:
        n = labels.size
        self.n_free = 1 if n_classes == 2 else n_classes
        self.labels = labels
        self.offsets = x.offsets()
        self.n_columns = sum(x.n_codes) + 1
        self.nodes, self.roots, self.sample_codes = x.code_tree()
        self.expand, self.expand_t = x.root_expansion()
        counts = np.bincount(labels, minlength=n_classes)
        sample_weight = (n / (n_classes * counts))[labels]
        weights = sample_weight / sample_weight.sum()
        root_sizes = [self.nodes[u].size for u in self.roots]
        if len(self.roots) == 1:
            # Rows are the value combinations, weighted by their samples' total weight.
            self.row_weights = np.bincount(self.sample_codes[0], weights=weights, minlength=root_sizes[0])
            row_codes = [np.arange(root_sizes[0])]
        else:
            # Samples ordered by their code in the largest table: its reads and the gradient's writes to it
            # then walk it in order (the sums are over all samples, so the order changes only rounding).
            order = x.sample_order()
            self.row_weights = weights[order]
            row_codes = [c[order] for c in self.sample_codes]
        n_rows = self.row_weights.size
        block = max(256, _ONE_HOT_BLOCK_LOGITS // self.n_free)
        self.slices = [slice(start, min(start + block, n_rows)) for start in range(0, n_rows, block)]
        self.block_codes = [[c[s] for c in row_codes] for s in self.slices]
        # One matrix sums the rows for every root at once (the roots' tables stacked): a single sparse product
        # per evaluation, streaming over the rows, with the scattered writes landing in the small tables.
        self.root_starts = np.cumsum([0, *root_sizes])
        stacked = np.stack([c + start for c, start in zip(row_codes, self.root_starts, strict=False)], axis=1)
        self.root_sum = scipy.sparse.csc_array(
            (np.ones(stacked.size), stacked.ravel(), np.arange(0, stacked.size + 1, len(row_codes))),
            shape=(self.root_starts[-1], n_rows),
        )
        self.rows_buffer = np.empty((n_rows, self.n_free))
        # Every per-sample temporary is allocated once: allocating them per evaluation cost page faults,
        # which threads of one process take in turn (two sources on two threads then ran no faster).
        self.factor_buffer = np.empty((min(block, n_rows), self.n_free))
        self.total_buffer, self.log_buffer, self.scale_buffer = np.empty(n_rows), np.empty(n_rows), np.empty(n_rows)
        self.ones = np.ones(self.n_free)

        # The label term sum_i w_i z_{i, y_i} is linear in the parameters: its coefficients, summed once.
        free_labels = labels - (n_classes - self.n_free)
        owned = free_labels >= 0
        target = np.zeros((self.n_free, self.n_columns))
        present = np.zeros(self.n_columns)
        for j, (m, offset) in enumerate(zip(x.n_codes, self.offsets, strict=True)):
            flat = free_labels[owned] * m + x.codes[owned, j]
            target[:, offset : offset + m] = np.bincount(
                flat, weights=weights[owned], minlength=self.n_free * m
            ).reshape(self.n_free, m)
            present[offset : offset + m] = np.bincount(x.codes[:, j], minlength=m) > 0
        target[:, -1] = np.bincount(free_labels[owned], weights=weights[owned], minlength=self.n_free)
        present[-1] = 1.0
        self.target = target
        self.abs_max = present  # the largest |entry| of each design column, ones column last

    def n_parameters(self) -> int:
        return self.n_free * self.n_columns

    def _root_tables(self, w: np.ndarray) -> list[np.ndarray]:
        """Each root's logit table (size, free classes); the intercept is in the first root's."""
        stacked = _sparse_times_dense(self.expand, np.ascontiguousarray(w.T))
        return [stacked[a:b] for a, b in zip(self.root_starts[:-1], self.root_starts[1:], strict=True)]

    def loss_and_gradient(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        w = theta.reshape(self.n_free, -1)
        needs_shift = (np.abs(w) @ self.abs_max).max() >= _SAFE_LOGIT
        binary = self.n_free == 1
        root_tables = self._root_tables(w)
        # |every partial sum of logits| < _SAFE_LOGIT unless needs_shift: products of exps stay finite and normal.
        exps = None if needs_shift else [np.exp(t) for t in root_tables]
        loss = -np.vdot(self.target, w)
        scale = self.scale_buffer
        for block, s in enumerate(self.slices):
            z = self.rows_buffer[s]
            codes = self.block_codes[block]
            factor = self.factor_buffer[: s.stop - s.start]
            if exps is None:
                _rows(root_tables[0], codes[0], out=z)
                for table, c in zip(root_tables[1:], codes[1:], strict=True):
                    z += _rows(table, c, out=factor)
                log_partition, total = _exp_shifted_rows(z, binary, needs_shift)
            else:
                _rows(exps[0], codes[0], out=z)
                for e, c in zip(exps[1:], codes[1:], strict=True):
                    z *= _rows(e, c, out=factor)
                total = np.matmul(z, self.ones, out=self.total_buffer[s])
                if binary:
                    total += 1.0
                log_partition = np.log(total, out=self.log_buffer[s])
            weights = self.row_weights[s]
            loss += weights @ log_partition
            np.divide(weights, total, out=scale[s])
        # The rows are w_i * softmax probabilities once scaled by w_i / total_i: the segment sums' entries do it.
        self.root_sum.data.reshape(-1, len(self.roots))[:] = scale[:, None]
        stacked = _sparse_times_dense(self.root_sum, self.rows_buffer)
        columns = _sparse_times_dense(self.expand_t, stacked)  # (F + 1, free classes), the intercept last
        return float(loss), (columns.T - self.target).ravel()

    def true_class_log_proba(self, theta: np.ndarray) -> np.ndarray:
        """log p(y_i | x_i) for every sample."""
        tables = self._root_tables(theta.reshape(self.n_free, -1))
        z = _rows(tables[0], self.sample_codes[0])
        for table, c in zip(tables[1:], self.sample_codes[1:], strict=True):
            z += _rows(table, c)
        if self.n_free == 1:
            z = np.hstack([np.zeros((z.shape[0], 1)), z])  # class 0's fixed logit
        picked = z[np.arange(z.shape[0]), self.labels]
        shift = z.max(axis=1)
        return picked - (np.log(np.exp(z - shift[:, None]).sum(axis=1)) + shift)


Design = np.ndarray | scipy.sparse.sparray | OneHotCodes


def _softmax_problem(x: Design, labels: np.ndarray, n_classes: int) -> _SoftmaxProblem | _OneHotSoftmaxProblem:
    if isinstance(x, OneHotCodes):
        return _OneHotSoftmaxProblem(x, labels, n_classes)
    return _SoftmaxProblem.build(x, labels, n_classes)


def balanced_logistic_log_loss(
    x: Design,
    labels: np.ndarray,
    n_classes: int,
    *,
    tol: float = 1e-4,
    max_iter: int = 100,
    evaluate_on: tuple[Design, np.ndarray] | None = None,
) -> float:
    """In-sample mean log-loss of an unpenalised logistic regression with balanced class weights.

    Fits the intercept and weights minimising sum_i w_i * (-log p(y_i | x_i)) with w_i proportional to
    1 / count(y_i), by L-BFGS-B from zero with scikit-learn's lbfgs settings (gtol ``tol``, ftol 64 eps,
    ``max_iter`` iterations, 50 line-search steps), then returns the unweighted mean of -log p(y_i | x_i)
    with p clipped to [eps, 1 - eps], as ``LogisticRegression(penalty=None, class_weight="balanced")``
    followed by ``log_loss`` on the same samples computes it. ``labels`` are codes 0..n_classes-1, each
    present. ``evaluate_on=(x_test, labels_test)`` scores the fitted model on those samples instead.
    """
    problem = _softmax_problem(x, labels, n_classes)
    theta0 = np.zeros(problem.n_parameters())
    result = scipy.optimize.minimize(
        problem.loss_and_gradient,
        theta0,
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": max_iter, "maxls": 50, "gtol": tol, "ftol": 64 * _EPS},
    )
    if evaluate_on is not None:
        # Only the design and labels are used from here on; the balanced weights of a class absent from the
        # evaluation samples would be 1/0.
        with np.errstate(divide="ignore"):
            problem = _softmax_problem(evaluate_on[0], evaluate_on[1], n_classes)
    proba = np.clip(np.exp(problem.true_class_log_proba(result.x)), _EPS, 1 - _EPS)
    return float(-np.log(proba).mean())


def null_log_loss(n_classes: int) -> float:
    """Log-loss of the balanced logistic regression on an all-zero design: log C.

    With only an intercept, the balanced objective (1/C) sum_c -log p_c is minimised by p_c = 1/C, which is
    also where L-BFGS starts (its gradient at zero vanishes), so the fitted model predicts the uniform
    distribution whatever the class frequencies and its mean log-loss is exactly log C.
    """
    return float(np.log(n_classes))
