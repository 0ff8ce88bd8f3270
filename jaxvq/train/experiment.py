"""What a run is made of: its config, data, device mesh, model definition, optimizer and
initial state (`setup`), and the train state that the compiled steps carry.

The NNX model is split at the boundary into a static graph definition and its
variables (parameters, and model state such as an EMA codebook), which the
compiled steps take as explicit arguments and merge inside.
"""
from __future__ import annotations

import os
from typing import Any, Callable

import jax
import jax.numpy as jnp
import ml_collections
import optax
from flax import nnx, struct

from jaxvq import config as config_lib
from jaxvq.data import batches, load_dataset, pipeline
from jaxvq.errors import RunError
from jaxvq.models.base import TrainedModel
from jaxvq.registry import build_model, model_class
from jaxvq.runtime import sharding, xla_options
from jaxvq.train.checkpoint import Checkpointer, latest_step
from jaxvq.train.workdir import load_config

# Keys besides the steps' fold_in(key, step): evaluation's randomness
# (binarization, VAE samples) is the same at every evaluation.
EVAL_KEY_TAG, SAMPLE_KEY_TAG, INIT_KEY_TAG = 2**31 - 1, 2**31 - 2, 2**31 - 3


@struct.dataclass
class TrainState:
  step: jax.Array          # int32 scalar
  params: Any              # nnx.State of nnx.Param
  opt_state: Any           # optax state
  model_state: Any         # nnx.State of every other model variable
  rng: jax.Array           # uint32 key data of the run's base key

  def key(self, tag) -> jax.Array:
    """The base key folded with `tag` (the step, or one of the tags above)."""
    return jax.random.fold_in(jax.random.wrap_key_data(self.rng), tag)


@struct.dataclass
class Experiment:
  """Everything a run needs besides its state; built once by `setup`."""
  config: ml_collections.ConfigDict = struct.field(pytree_node=False)
  dataset: Any = struct.field(pytree_node=False)
  mesh: Any = struct.field(pytree_node=False)
  graphdef: Any = struct.field(pytree_node=False)
  optimizer: Any = struct.field(pytree_node=False)
  initial_state: TrainState = None

  def model(self, state: TrainState):
    """The NNX model with `state`'s variables."""
    return nnx.merge(self.graphdef, state.params, state.model_state)

  def jit_model(self, fn: Callable, **kwargs) -> Callable:
    """fn(model, *args) compiled as fn'(state, *args), with the mesh's XLA options."""
    return xla_options.jit(lambda state, *args: fn(self.model(state), *args), self.mesh, **kwargs)


def learning_rate_schedule(config: ml_collections.ConfigDict):
  """config.learning_rate, constant or cosine-decayed to 0 over config.num_train_steps."""
  if config.learning_rate_schedule == "cosine":
    return optax.cosine_decay_schedule(config.learning_rate, config.num_train_steps)
  return config.learning_rate


def setup(config: ml_collections.ConfigDict, dataset, abstract: bool = False) -> Experiment:
  """Checks the config, completes its model section from the data, builds the model and the
  optimizer, and places the initial state on the mesh.

  Args:
    config: the run's config (`jaxvq.get_config` or a file in configs/).
    dataset: the data it trains on (`jaxvq.load_dataset(config.dataset, ...)`).
    abstract: True: the initial state is jax.ShapeDtypeStruct with its shardings, nothing
      initialised or computed, for lowering the compiled steps (jaxvq.runtime.lowering).
  """
  config_lib.check(config)
  mesh = sharding.make_mesh(config.num_devices)
  sharding.check_divisible(config.batch_size, mesh)
  batches.check_batch_size(config.batch_size, len(dataset.train))
  pipeline.Augmentation.of(config, dataset.image_shape)   # refuses one the images cannot take
  config = ml_collections.ConfigDict(config.to_dict())
  config.model = model_class(config.model.name).configure(config.model, dataset)
  # Models of images scale their MSE by the pixels' variance; a prior's codes have none.
  variance = dataset.pixel_variance() if hasattr(dataset, "pixel_variance") else None
  model = build_model(config.model, dataset.image_shape, seed=config.seed,
                      dtype=jnp.dtype(config.dtype), data_variance=variance, abstract=abstract)
  model.load_pretrained(trained_model)   # fixed weights of other runs (e.g. a feature network)
  graphdef, params, model_state = nnx.split(model, nnx.Param, ...)
  optimizer = optax.adam(learning_rate_schedule(config))
  initial_state = jax.jit(lambda p, s: TrainState(
      step=jnp.zeros((), jnp.int32), params=p, opt_state=optimizer.init(p), model_state=s,
      rng=jax.random.key_data(jax.random.key(config.seed))),
                          out_shardings=sharding.replicated(mesh))
  state = (initial_state.eval_shape if abstract else initial_state)(params, model_state)
  return Experiment(config, dataset, mesh, graphdef, optimizer, state)


def image_dataset(config: ml_collections.ConfigDict):
  """The images an image run's config names (its dataset, image_size, data_dir and
  corrupt_images keys)."""
  return load_dataset(config.dataset, image_size=config.image_size,
                      data_dir=config.data_dir or None, corrupt_images=config.corrupt_images)


def restore(workdir: str, data_of: Callable, step: int | None = None) -> tuple:
  """(experiment, state, step) of the run trained in `workdir`: its config.json set up on the
  data `data_of(config)` gives, at the checkpoint of `step` (None: the newest).

  Raises:
    RunError, in one line, for a workdir that holds no run or no checkpoint.
  """
  config = load_config(workdir)
  directory = os.path.join(workdir, "checkpoints")
  step = latest_step(directory) if step is None else step
  if step is None:
    raise RunError(f"{workdir} has no checkpoint yet: train it first (rerun its train.py "
                   f"command)")
  exp = setup(config, data_of(config))
  checkpointer = Checkpointer(directory, read_only=True)
  try:
    state = checkpointer.restore(step, exp.initial_state)
  finally:
    checkpointer.close()
  return exp, state, step


def trained_model(workdir: str) -> TrainedModel:
  """The model of the image run trained in `workdir`, at its newest checkpoint, on the host:
  what another run takes fixed weights from (`Model.load_pretrained`).

  Raises:
    RunError, in one line, for a workdir that holds no run or no checkpoint.
  """
  exp, state, _ = restore(workdir, image_dataset)
  return TrainedModel(exp.model(jax.device_get(state)), tuple(exp.dataset.image_shape))
