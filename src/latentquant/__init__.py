"""latentquant: disentangled representation learning through latent quantization, in PyTorch.

The face of the library; everything else lives in its own module (`latentquant.metrics`, `latentquant.data`,
`latentquant.models`, ...). Each name loads its module on first use, so commands that need no torch
(`latentquant --help`, `latentquant data check`, `latentquant metrics`) start without importing it.
"""

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "ScalarQuantizer": ("modules.quantizers", "ScalarQuantizer"),  # per-latent learnable scalar codebooks
    "LatentOutput": ("modules.latents", "LatentOutput"),
    "build_model": ("models", "build_model"),  # name, parts, num_latents, **hyperparameters -> LatentModel
    "list_models": ("models", "list_models"),
    "load_config": ("config", "resolve"),  # key=value overrides -> a finished Config
    "resume_config": ("config", "resume"),  # run directory + overrides -> the Config that continues it
    "load_dataset": ("data", "load"),  # name, path=None, image_size=... -> GroundTruthData
    # Config -> final metrics (writes the run directory). Not named `train`: that is the loop's module, and a
    # package attribute shared by a submodule and a function changes meaning once the submodule is imported.
    "fit": ("train", "train"),
    "evaluate_run": ("evaluate", "evaluate_run"),  # run directory -> every metric and figure of a checkpoint
    "load_run": ("interop", "load_run"),  # run directory -> model, config, data (and the split) for a notebook
    "RunDir": ("runs", "RunDir"),
}

__all__ = ["LatentOutput", "RunDir", "ScalarQuantizer", "__version__", "build_model", "evaluate_run", "fit",
           "list_models", "load_config", "load_dataset", "load_run", "resume_config"]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'latentquant' has no attribute {name!r}")
    module, attr = _LAZY[name]
    value = getattr(import_module(f".{module}", __name__), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
