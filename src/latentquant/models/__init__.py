"""Objectives (one file each) and the registries that name them."""

from . import ae, infogan, qlae, vae, vqvae  # noqa: F401  (registers the models)
from .base import Autoencoder, clip_gradients, make_optimizer, param_groups
from .infogan import InfoWGAN, make_gan_optimizers
from .registry import GAN_MODELS, MODELS, ModelParts, build_gan, build_model, lookup, model_names, register

__all__ = ["GAN_MODELS", "MODELS", "Autoencoder", "InfoWGAN", "ModelParts", "build_gan", "build_model",
           "clip_gradients", "lookup", "make_gan_optimizers", "make_optimizer", "model_names",
           "param_groups", "register"]
