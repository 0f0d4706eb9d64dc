"""latentquant: disentangled representation learning through latent quantization, in PyTorch."""

from .modules.latents import ContinuousLatent, LatentOutput
from .modules.quantizers import ScalarQuantizer

__version__ = "0.1.0"
__all__ = ["ContinuousLatent", "LatentOutput", "ScalarQuantizer", "__version__"]
