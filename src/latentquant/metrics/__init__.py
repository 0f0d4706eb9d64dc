"""Disentanglement and reconstruction metrics: plain arrays in, floats and NumPy arrays out."""

from .beta_vae import beta_vae_score
from .dci import dci
from .dci_es import dci_es
from .dcimig import dcimig
from .factored_components import factored_components
from .factorvae import factorvae_score
from .flatness import flatness
from .infomec import infomec
from .irs import irs
from .mig import mig
from .mig_sup import mig_sup
from .modularity import modularity_explicitness
from .psnr import psnr
from .sampling import FactorSampler
from .sap import sap
from .suite import array_metrics
from .udr import udr
from .unsupervised import unsupervised_scores
from .usage import codebook_usage, usage_entropy_bits

__all__ = ["FactorSampler", "array_metrics", "beta_vae_score", "codebook_usage", "dci", "dci_es", "dcimig",
           "factored_components", "factorvae_score", "flatness", "infomec", "irs", "mig", "mig_sup",
           "modularity_explicitness", "psnr", "sap", "udr", "unsupervised_scores", "usage_entropy_bits"]
