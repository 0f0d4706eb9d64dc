"""Objectives (one file each) and the registry that names them."""

from . import ae, qlae, vae, vqvae  # noqa: F401  (registers the models)
from .base import Autoencoder, clip_gradients, make_optimizer, param_groups
from .registry import MODELS, ModelParts, build_model, register

__all__ = ["MODELS", "Autoencoder", "ModelParts", "build_model", "clip_gradients", "make_optimizer",
           "param_groups", "register"]
