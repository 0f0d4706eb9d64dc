"""Every array metric at once, flattened to named scalars, and the ``.npz`` they are read from: what
``latentquant metrics`` prints."""

from __future__ import annotations

import os
import zipfile
from collections.abc import Callable

import numpy as np

from ..errors import UserError
from . import _inputs
from .dci import Predictor, dci
from .dci_es import dci_es
from .dcimig import dcimig
from .infomec import NmiFloor, infomec
from .irs import irs
from .mig import mig
from .mig_sup import mig_sup
from .modularity import modularity_explicitness
from .protocols import DEFAULT_PROTOCOL, Protocol, get_protocol, warn_mig_binning
from .sap import sap
from .unsupervised import unsupervised_scores

UNSUPERVISED_KEYS = ("gaussian_total_correlation", "gaussian_wasserstein_correlation_norm", "mutual_info_score")
# Intervention metrics need a sampler over a dataset, UDR several models, PSNR images: none fits plain arrays.
NOT_FROM_ARRAYS = ("factorvae_score", "beta_vae_score", "flatness", "factored_components", "udr", "psnr")


def array_metrics(
    sources: np.ndarray,
    latents: np.ndarray,
    *,
    discrete_latents: bool | None = None,
    dci_predictor: Predictor | None = None,
    protocol: str | Protocol = DEFAULT_PROTOCOL,
    nmi_floor: NmiFloor = "none",
    fresh: bool = False,
    progress: Callable[[str], None] | None = None,
) -> dict[str, float]:
    """InfoMEC (with gaps), DCI, MIG, SAP and DCI-ES explicitness/size under an evaluation ``protocol``, as floats.

    ``protocol`` (a name in :data:`~latentquant.metrics.protocols.PROTOCOLS`, or a
    :class:`~latentquant.metrics.protocols.Protocol`) picks InfoMEC's activity rule, neighbours and InfoE
    iterations, DCI's learner and split, SAP's mode and whether MIG bins integer codes; ``dci_predictor``
    overrides its learner (with that learner's default split). ``fresh=True`` says the rows are the
    protocol's fresh draw (``fresh_split`` rows, fitting rows first): InfoMEC and MIG then see the fitting
    rows only and DCI splits exactly ``fresh_split``. ``discrete_latents`` is passed to InfoMEC and MIG
    (``None``: follow the dtype); ``nmi_floor`` to InfoMEC. ``progress`` is called with each metric's name
    as it starts (DCI's trees can take minutes).

    Keys: ``infom``, ``infoe``, ``infoc``, ``infom_gap``, ``infoc_gap``, ``active_latents`` (a count),
    ``dci_d``, ``dci_c``, ``dci_i``, ``mig``, ``sap``, ``dci_es_explicitness``, ``dci_es_size``, ``mig_sup``,
    ``dcimig``, ``modularity``, ``explicitness`` (its test AUC), ``irs``, and the unsupervised
    ``gaussian_total_correlation``, ``gaussian_wasserstein_correlation_norm`` and ``mutual_info_score``. MIG, SAP
    and the unsupervised scores need two latents or more and are ``nan`` with one. Raises ``ValueError`` as the
    metrics do, and for an unknown protocol; warns where the protocol's MIG binning merges the levels of a code.
    """
    chosen = get_protocol(protocol)
    sources, latents = _inputs.paired_arrays(sources, latents, "the metrics")
    stage = progress or (lambda name: None)
    fitting = slice(None)
    split = chosen.dci_split
    if fresh:
        if len(sources) != sum(chosen.fresh_split):
            raise ValueError(f"fresh=True needs the protocol's {sum(chosen.fresh_split)} rows, got {len(sources)}")
        fitting, split = slice(chosen.fresh_split[0]), chosen.fresh_split
    if dci_predictor is not None and dci_predictor != chosen.dci_predictor:
        split = chosen.fresh_split if fresh else None
    if split is not None and sum(split) > len(sources):
        split = None  # too few rows for the protocol's sizes: DCI's own proportions
    stage("InfoMEC")
    info = infomec(sources[fitting], latents[fitting], discrete_latents=discrete_latents,
                   activity=chosen.infomec_activity, n_neighbors=chosen.infomec_neighbors,
                   infoe_max_iter=chosen.infoe_max_iter, nmi_floor=nmi_floor)
    result = {key: info[key] for key in ("infom", "infoe", "infoc", "infom_gap", "infoc_gap")}
    result["active_latents"] = float(info["active_latents"].sum())
    n_train, n_test = split if split is not None else (None, None)
    stage(f"DCI ({dci_predictor or chosen.dci_predictor})")
    disentanglement = dci(sources, latents, predictor=dci_predictor or chosen.dci_predictor, n_train=n_train,
                          n_test=n_test)
    result.update(dci_d=disentanglement["d"], dci_c=disentanglement["c"], dci_i=disentanglement["i"])
    several = np.shape(latents)[1] >= 2
    discrete = _inputs.resolve_discrete(np.asarray(latents), discrete_latents)
    stage("MIG, SAP, DCI-ES")
    result["mig"] = float("nan")
    if several:
        warn_mig_binning(latents[fitting], discrete, chosen)
        result["mig"] = mig(sources[fitting], latents[fitting], n_bins=chosen.mig_bins,
                            discrete_latents=False if chosen.mig_bins_discrete else discrete_latents)
    test_fraction = chosen.fresh_split[1] / sum(chosen.fresh_split) if fresh else 1 / 3
    result["sap"] = sap(sources, latents, factor_type=chosen.sap_mode, test_fraction=test_fraction) if several \
        else float("nan")
    explicitness = dci_es(sources, latents)
    result.update(dci_es_explicitness=explicitness["explicitness"], dci_es_size=explicitness["size"])
    stage("MIG-sup, DCIMIG, Modularity, IRS, unsupervised")
    result.update(_literature_metrics(sources[fitting], latents[fitting], discrete_latents, chosen, several))
    return {key: float(value) for key, value in result.items()}


def _literature_metrics(sources: np.ndarray, latents: np.ndarray, discrete_latents: bool | None, chosen: Protocol,
                        several: bool) -> dict[str, float]:
    """The cheap plain-array metrics of disentanglement_lib and the papers after it (a second or two at N =
    10,000 together): MIG-sup, DCIMIG, Modularity and explicitness, IRS and the unsupervised scores."""
    bins = {"n_bins": chosen.mig_bins}
    discrete = {"discrete_latents": False if chosen.mig_bins_discrete else discrete_latents}
    modularity = modularity_explicitness(sources, latents, **bins, **discrete)
    unsupervised = unsupervised_scores(latents, **bins) if several else {}
    return {
        "mig_sup": mig_sup(sources, latents, **bins, **discrete),
        "dcimig": dcimig(sources, latents, **bins, **discrete)["score"],
        "modularity": modularity["modularity"],
        "explicitness": modularity["explicitness_test"],
        "irs": irs(sources, latents, **bins)["score"],
        **{key: unsupervised.get(key, float("nan")) for key in UNSUPERVISED_KEYS},
    }


def load_metric_arrays(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, bool | None]:
    """(sources, latents, discrete_latents) from an ``.npz``, or a :class:`~latentquant.errors.UserError` naming
    what is wrong.

    The archive holds ``sources`` (N, K) and ``latents`` (N, D), and optionally ``discrete_latents``, a single
    boolean (absent: ``None``, follow the latents' dtype). Pickled (object) arrays are refused.
    """
    if not os.path.isfile(path):
        raise UserError(f"no such file: {path}")
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise UserError(f"{path}: not a readable .npz file ({e})") from e
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise UserError(f"{path}: expected an .npz archive with arrays 'sources' and 'latents', got a single array")
    with archive:
        missing = [key for key in ("sources", "latents") if key not in archive.files]
        if missing:
            raise UserError(f"{path}: missing array(s) {', '.join(map(repr, missing))}; found {archive.files}")
        try:
            sources, latents = archive["sources"], archive["latents"]
            discrete = archive["discrete_latents"] if "discrete_latents" in archive.files else None
        except ValueError as e:  # object arrays need pickle, which is refused
            raise UserError(f"{path}: {e}") from e
    for key, array in (("sources", sources), ("latents", latents)):
        if array.ndim != 2:
            raise UserError(f"{path}: '{key}' must be 2-D (N, {'K' if key == 'sources' else 'D'}), got shape "
                            f"{array.shape}")
    if len(sources) != len(latents):
        raise UserError(f"{path}: 'sources' has {len(sources)} rows but 'latents' has {len(latents)}")
    if discrete is not None:
        if discrete.shape != () or discrete.dtype.kind != "b":
            raise UserError(f"{path}: 'discrete_latents' must be a single boolean, got {discrete.dtype} "
                            f"of shape {discrete.shape}")
        discrete = bool(discrete)
    return sources, latents, discrete
