"""Every model by the name that `config.model.name` gives it: jaxvq's own (jaxvq/models/,
and each prior in jaxvq/priors/) and any a user defines (a subclass of
jaxvq.models.base.Model, or of jaxvq.priors.base.Prior, whose CONFIG has a "name" field
registers itself when it is defined).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
from flax import nnx

from jaxvq import models, priors  # noqa: F401  (defining them registers jaxvq's models)
from jaxvq.errors import ConfigError
from jaxvq.models.base import registered

__all__ = ["model_class", "default_config", "build_model", "names"]


def names() -> list:
  return sorted(registered())


def model_class(name: str) -> type:
  models_by_name = registered()
  if name not in models_by_name:
    raise ConfigError(f"unknown model.name {name!r}; choose one of {sorted(models_by_name)}")
  return models_by_name[name]


def default_config(name: str, **variant) -> ml_collections.ConfigDict:
  """The config section of model `name` (`config.model`) with its defaults; `variant` picks
  among its forms, e.g. quantizer="fsq" for the VQ-VAE."""
  return model_class(name).default_config(**variant)


def build_model(model_config, input_shape, *, seed: int, dtype=jnp.float32,
                data_variance: float | None = None, abstract: bool = False) -> nnx.Module:
  """A model with freshly initialised parameters.

  Args:
    model_config: the model's config section (`config.model`; `default_config(name)`).
    input_shape: (H, W, C) of the images for the image models; the code grid (h, w) for
      a prior.
    seed: the parameters' seed.
    dtype: what the nets compute in (parameters stay float32).
    data_variance: the variance of the training pixels in [0, 1] (the normalized MSE's
      divisor), for the models of images; None for a prior.
    abstract: True: its variables are jax.ShapeDtypeStruct, nothing initialised or computed
      (nnx.eval_shape), for lowering its functions (jaxvq.runtime.lowering).

  Returns:
    The nnx module: called as `model(x, key, labels)` -> ModelOutput.
  """
  cls = model_class(model_config.name)
  extra = {} if data_variance is None else {"data_variance": data_variance}
  create = lambda: cls(model_config, tuple(input_shape), dtype=dtype,
                       rngs=nnx.Rngs(params=seed), **extra)
  shapes = nnx.eval_shape(create)
  if abstract:
    return shapes
  graphdef, _ = nnx.split(shapes)
  # Run eagerly, each initializer would be compiled on its own; as one program
  # at XLA's default optimization level the random-number code still compiles
  # slowly. It runs once: compile it unoptimized.
  variables = jax.jit(lambda: nnx.split(create())[1]).lower().compile(
      compiler_options={"xla_backend_optimization_level": 0})()
  return nnx.merge(graphdef, variables)
