"""The models, by the name that `config.model.name` gives them.

  autoencoder.py  encoder -> z -> decoder, mean squared error
  vae.py          Gaussian posterior, N(0, I) prior, -ELBO; importance-weighted test NLL
  vqvae.py        encoder, quantizer (quantizers/: vq, fsq, lfq, residual_vq), decoder
  pixelcnn.py     gated PixelCNN prior over a VQ-VAE's code grids, and its samplers
  base.py         ModelOutput and the interface the training loop calls
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
from flax import nnx

from jaxvq.errors import ConfigError
from jaxvq.models.autoencoder import Autoencoder
from jaxvq.models.base import ImageModel, ModelOutput
from jaxvq.models.pixelcnn import PixelCNNPrior
from jaxvq.models.vae import VAE
from jaxvq.models.vqvae import VQVAE

__all__ = ["MODELS", "model_class", "default_config", "build_model", "Autoencoder", "VAE",
           "VQVAE", "PixelCNNPrior", "ImageModel", "ModelOutput"]

MODELS = {"autoencoder": Autoencoder, "vae": VAE, "vqvae": VQVAE, "pixelcnn": PixelCNNPrior}


def model_class(name: str) -> type:
  if name not in MODELS:
    raise ConfigError(f"unknown model.name {name!r}; choose one of {sorted(MODELS)}")
  return MODELS[name]


def default_config(name: str, **variant) -> ml_collections.ConfigDict:
  """The config section of model `name` (`config.model`) with its defaults; `variant` picks
  among its forms, e.g. quantizer="fsq" for the VQ-VAE."""
  return model_class(name).default_config(**variant)


def build_model(model_config, image_shape, *, data_variance: float, seed: int,
                dtype=jnp.float32) -> nnx.Module:
  """A model with freshly initialised parameters.

  Args:
    model_config: the model's config section (`config.model`; `default_config(name)`).
    image_shape: (H, W, C) of the images for the image models; the code grid (h, w) for
      the PixelCNN prior.
    data_variance: the variance of the training pixels in [0, 1] (the normalized MSE's
      divisor).
    seed: the parameters' seed.
    dtype: what the nets compute in (parameters stay float32).

  Returns:
    The nnx module: called as `model(x, key, labels)` -> ModelOutput.
  """
  cls = model_class(model_config.name)
  create = lambda: cls(model_config, tuple(image_shape), data_variance=data_variance,
                       dtype=dtype, rngs=nnx.Rngs(params=seed))
  graphdef, _ = nnx.split(nnx.eval_shape(create))
  # Run eagerly, each initializer would be compiled on its own; as one program
  # at XLA's default optimization level the random-number code still compiles
  # slowly. It runs once: compile it unoptimized.
  variables = jax.jit(lambda: nnx.split(create())[1]).lower().compile(
      compiler_options={"xla_backend_optimization_level": 0})()
  return nnx.merge(graphdef, variables)
