"""Evaluation protocols: every convention that makes a number comparable with one paper's, picked at once.

The same representation scores differently under the conventions of different codebases: which latents
InfoMEC counts as active, how many neighbours its estimator uses, which learner DCI fits on which split,
whether SAP is the continuous or the discrete score, whether MIG bins integer codes, whether the FactorVAE
score prunes latents of small variance, whether a VAE is scored by its posterior mean or a sample, and
whether the metrics see the given evaluation set or fresh draws from the dataset. A :class:`Protocol` names
one choice for each; :data:`PROTOCOLS` holds the four the field reports under.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, fields
from typing import Literal

import numpy as np

from .dci import Predictor
from .infomec import Activity
from .sap import FactorType

Sampling = Literal["given", "fresh"]


@dataclass(frozen=True)
class Protocol:
    """One choice for every convention that changes a score. Replace fields for a variant:
    ``dataclasses.replace(PROTOCOLS["dlib"], factorvae_prune=0.0)`` is disent's FactorVAE score."""

    name: str
    source: str  # the codebase whose conventions these are
    infomec_activity: Activity = "reference"
    infomec_neighbors: int = 10
    infoe_max_iter: int = 100
    dci_predictor: Predictor = "gbt"
    # (train, test) sizes; None: DCI's own default for the learner (gbt 10,000 / 5,000, forest 90/10 of N).
    dci_split: tuple[int, int] | None = None
    # "given": the metrics see the evaluation set and split it; "fresh": the whole dataset is sampled
    # uniformly with replacement, ``fresh_split`` rows for fitting and for testing.
    sampling: Sampling = "given"
    fresh_split: tuple[int, int] = (10_000, 5_000)
    sap_mode: FactorType = "continuous"
    mig_bins_discrete: bool = False  # True: integer codes are binned into 20 like continuous latents
    mig_bins: int = 20
    factorvae_prune: float = 0.05
    representation: Literal["mean", "sample"] = "mean"  # for Gaussian posteriors (VAE family)
    codes: Literal["values", "indices"] = "values"  # for quantized latents

    def describe(self) -> str:
        """One line naming the protocol and where it departs from the default one."""
        default = PROTOCOLS["qlae"]
        changed = [f"{f.name}={getattr(self, f.name)}" for f in fields(self)
                   if f.name not in ("name", "source") and getattr(self, f.name) != getattr(default, f.name)]
        return f"{self.name} ({self.source}{'; ' + ', '.join(changed) if changed else ''})"


PROTOCOLS: dict[str, Protocol] = {
    # The QLAE authors' code (kylehkhsu/latent_quantization) computes InfoMEC only; its other conventions are
    # latentquant's defaults: disentanglement_lib's DCI learner and SAP's continuous score.
    "qlae": Protocol("qlae", "QLAE code, Hsu et al. 2023"),
    # Tripod (kylehkhsu/tripod): IQR activity rule, a random forest on a 90/10 split of the evaluation set.
    "tripod": Protocol("tripod", "Tripod code, Hsu et al. 2024", infomec_activity="tripod", dci_predictor="forest"),
    # FactorQVAE (Baykal et al. 2024): fresh draws from the whole dataset, k = 3 (scikit-learn's default),
    # 500 logistic-regression iterations, code indices for quantized models, a posterior sample for VAEs.
    "factorqvae": Protocol("factorqvae", "FactorQVAE code, Baykal et al. 2024", infomec_neighbors=3,
                           infoe_max_iter=500, dci_split=(10_000, 5_000), sampling="fresh",
                           representation="sample", codes="indices"),
    # disentanglement_lib (google-research/disentanglement_lib): fresh 10,000 + 5,000 draws, SAP's discrete
    # LinearSVC score, every latent binned into 20 for MIG. It has no InfoMEC: QLAE's is used.
    "dlib": Protocol("dlib", "disentanglement_lib, Locatello et al. 2019", dci_split=(10_000, 5_000),
                     sampling="fresh", sap_mode="discrete", mig_bins_discrete=True),
}
DEFAULT_PROTOCOL = "qlae"


def get_protocol(protocol: str | Protocol) -> Protocol:
    """The named protocol (or the one given); ``ValueError`` naming the choices for an unknown name."""
    if isinstance(protocol, Protocol):
        return protocol
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown evaluation protocol {protocol!r}; choose from {', '.join(PROTOCOLS)}")
    return PROTOCOLS[protocol]


def warn_mig_binning(latents: np.ndarray, discrete: bool, protocol: Protocol) -> None:
    """Warn where binning a code for MIG merges its levels, so the score differs from the label-encoded one."""
    if not (discrete and protocol.mig_bins_discrete):
        return
    levels = [np.unique(column).size for column in np.asarray(latents).T]
    many = [f"latent {j} ({n} levels)" for j, n in enumerate(levels) if n > protocol.mig_bins]
    if many:
        warnings.warn(f"MIG ({protocol.name} protocol) bins each code into {protocol.mig_bins}, merging levels of "
                      f"{', '.join(many)}; label-encoded codes (the qlae protocol) give a different MIG",
                      UserWarning, stacklevel=3)


def warn_factorvae_pruning(active: np.ndarray, nmi: np.ndarray, protocol: Protocol, *, informative: float = 0.1
                           ) -> None:
    """Warn where the FactorVAE score's pruning dropped a latent that carries information about a source.

    ``active``: the score's (D,) mask of latents it kept; ``nmi``: the (K, D) InfoMEC NMI of the same model. A
    latent counts as informative when its largest NMI is at least ``informative``.
    """
    best = np.asarray(nmi).max(axis=0)
    lost = [f"latent {j} (NMI {best[j]:.2f})" for j in np.flatnonzero(~np.asarray(active)) if best[j] >= informative]
    if lost:
        warnings.warn(f"FactorVAE score ({protocol.name} protocol) prunes latents with std < "
                      f"{protocol.factorvae_prune}, dropping informative {', '.join(lost)}; without pruning "
                      "(disent's rule) the score differs", UserWarning, stacklevel=3)
