"""The models, by the name that `config.model.name` gives them."""
import jax
import jax.numpy as jnp
from flax import nnx

from jaxvq.errors import ConfigError
from jaxvq.models.autoencoder import Autoencoder
from jaxvq.models.base import ImageModel, ModelOutput
from jaxvq.models.pixelcnn import PixelCNNPrior
from jaxvq.models.vae import VAE
from jaxvq.models.vqvae import VQVAE

__all__ = ["MODELS", "build_model", "Autoencoder", "VAE", "VQVAE", "PixelCNNPrior",
           "ImageModel", "ModelOutput"]

MODELS = {"autoencoder": Autoencoder, "vae": VAE, "vqvae": VQVAE, "pixelcnn": PixelCNNPrior}


def build_model(model_config, image_shape, *, data_variance: float, seed: int,
                dtype=jnp.float32) -> nnx.Module:
  """Builds `model_config.name` for inputs of `image_shape`, parameters from `seed`.

  `image_shape` is (H, W, C) for the image models and the code grid (h, w) for
  the PixelCNN prior.
  """
  name = model_config.name
  if name not in MODELS:
    raise ConfigError(f"unknown model.name {name!r}; choose one of {sorted(MODELS)}")
  create = lambda: MODELS[name](model_config, tuple(image_shape), data_variance=data_variance,
                                dtype=dtype, rngs=nnx.Rngs(params=seed))
  graphdef, _ = nnx.split(nnx.eval_shape(create))
  # Run eagerly, each initializer would be compiled on its own (~25 s in all
  # on a 2-core CPU); as one program at the default optimization level its
  # random-number code still takes ~20 s. It runs once: compile it unoptimized.
  variables = jax.jit(lambda: nnx.split(create())[1]).lower().compile(
      compiler_options={"xla_backend_optimization_level": 0})()
  return nnx.merge(graphdef, variables)
