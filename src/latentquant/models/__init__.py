"""Objectives, one file each, behind one registry: build_model, list_models, register, LatentModel."""

from . import ae, factorq, infogan, qlae, tripod, vae, vqvae  # noqa: F401  (registers the models)
from .base import LatentModel
from .registry import ModelParts, build_model, get_spec, list_models, register

__all__ = ["LatentModel", "ModelParts", "build_model", "get_spec", "list_models", "register"]
