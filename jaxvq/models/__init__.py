"""The models, by the name that `config.model.name` gives them."""
from flax import nnx
import jax.numpy as jnp

from jaxvq.models.autoencoder import Autoencoder
from jaxvq.models.base import ModelOutput
from jaxvq.models.vae import VAE
from jaxvq.models.vqvae import VQVAE

MODELS = {"autoencoder": Autoencoder, "vae": VAE, "vqvae": VQVAE}


def build_model(model_config, image_shape, *, data_variance: float, seed: int,
                dtype=jnp.float32) -> nnx.Module:
  """Builds `model_config.name` for images of `image_shape` = (H, W, C)."""
  name = model_config.name
  if name not in MODELS:
    raise ValueError(f"unknown model.name {name!r}; choose one of {sorted(MODELS)}")
  return MODELS[name](model_config, tuple(image_shape), data_variance=data_variance,
                      dtype=dtype, rngs=nnx.Rngs(params=seed))
