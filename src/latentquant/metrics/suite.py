"""Every array metric at once, flattened to named scalars: what ``latentquant metrics`` prints."""

from __future__ import annotations

import numpy as np

from latentquant.metrics import _inputs
from latentquant.metrics.dci import Predictor, dci
from latentquant.metrics.dci_es import dci_es
from latentquant.metrics.infomec import infomec
from latentquant.metrics.mig import mig
from latentquant.metrics.sap import sap

# The FactorVAE score needs a sampler that can fix a factor and PSNR needs images: neither fits plain arrays.
NOT_FROM_ARRAYS = ("factorvae_score", "psnr")


def array_metrics(
    sources: np.ndarray,
    latents: np.ndarray,
    *,
    discrete_latents: bool | None = None,
    dci_predictor: Predictor = "gbt",
) -> dict[str, float]:
    """InfoMEC (with gaps), DCI, MIG, SAP and DCI-ES explicitness/size with default options, as floats.

    ``discrete_latents`` is passed to InfoMEC and MIG (``None``: follow the dtype). Keys: ``infom``,
    ``infoe``, ``infoc``, ``infom_gap``, ``infoc_gap``, ``active_latents`` (a count), ``dci_d``, ``dci_c``,
    ``dci_i``, ``mig``, ``sap``, ``dci_es_explicitness``, ``dci_es_size``. MIG and SAP need two latents or
    more and are ``nan`` with one. Raises ``ValueError`` as the metrics do.
    """
    _inputs.paired_arrays(sources, latents, "the metrics")
    info = infomec(sources, latents, discrete_latents=discrete_latents)
    result = {key: info[key] for key in ("infom", "infoe", "infoc", "infom_gap", "infoc_gap")}
    result["active_latents"] = float(info["active_latents"].sum())
    disentanglement = dci(sources, latents, predictor=dci_predictor)
    result.update(dci_d=disentanglement["d"], dci_c=disentanglement["c"], dci_i=disentanglement["i"])
    several = np.shape(latents)[1] >= 2
    result["mig"] = mig(sources, latents, discrete_latents=discrete_latents) if several else float("nan")
    result["sap"] = sap(sources, latents) if several else float("nan")
    explicitness = dci_es(sources, latents)
    result.update(dci_es_explicitness=explicitness["explicitness"], dci_es_size=explicitness["size"])
    return {key: float(value) for key, value in result.items()}
