"""What every model returns and may do, so that one training loop serves them all.

A model is an NNX module called as `model(inputs, key, labels, training)` ->
ModelOutput. Its class declares its config section (`CONFIG`, the keys of
`config.model`, whose "name" field names it) and the hooks the loop calls; a
class whose CONFIG has a "name" is registered under it when it is defined
(`registered`), so a new model, or a prior, is a new file and nothing else.
Quantizing models also implement `CodeUsage`, which the evaluation reads.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional, Protocol, runtime_checkable

import jax
import ml_collections
from flax import nnx, struct

from jaxvq import schema

_REGISTERED: dict = {}


def registered() -> dict:
  """name -> model class, for every class defined so far (jaxvq.registry loads jaxvq's own)."""
  return dict(_REGISTERED)


@struct.dataclass
class ModelOutput:
  loss: jax.Array                  # scalar that training minimises
  per_example: dict                # name -> [B]; evaluation averages them over the test set
  reconstruction: Optional[jax.Array] = None  # [B, H, W, C] in [0, 1]; None: nothing to show
  batch_metrics: dict = struct.field(default_factory=dict)  # scalars of this batch only
  # What the model's own hooks (`update_after_step`, `CodeUsage.code_counts`) read back, e.g.
  # the VQ-VAE's quantizer output; the loop passes it through and never looks inside.
  internals: Any = None


class TrainedModel(NamedTuple):
  """A model trained in another workdir, as `Model.load_pretrained`'s loader gives it."""
  model: Any           # the nnx model at that run's newest checkpoint
  image_shape: tuple   # (H, W, C) of the images it was trained on


class Model(nnx.Module):
  """The interface between a model and the training loop; a model overrides what it needs.

  `model(inputs, key, labels, training)` -> ModelOutput, where `inputs` are the
  dataset's preprocessed examples (images, or a prior's code grids), `labels`
  [B] int the class labels (used by class-conditional models) and `training`
  is True in the train step only (e.g. for quantizer dropout).
  """

  CONFIG: dict = {}
  # The metrics of its one-line console summaries, after the loss.
  SUMMARY_METRICS: tuple = ()

  def __init_subclass__(cls, **kwargs):
    super().__init_subclass__(**kwargs)
    name = cls.__dict__.get("CONFIG", {}).get("name")
    if name is not None:
      _REGISTERED[name.default] = cls

  @classmethod
  def config_section(cls, model_config) -> dict:
    """The schema of `config.model` for this model (it may depend on the config, e.g. the
    quantizer a VQ-VAE uses)."""
    del model_config
    return cls.CONFIG

  @classmethod
  def default_config(cls) -> ml_collections.ConfigDict:
    """`config.model` for this model, with its defaults."""
    return schema.defaults(cls.CONFIG)

  @classmethod
  def config_problems(cls, config) -> list:
    """One line per problem of the whole config (a plain dict) that its keys' own bounds
    cannot say, e.g. two keys that contradict each other; `jaxvq.config.check` raises them."""
    del config
    return []

  @classmethod
  def configure(cls, model_config, dataset):
    """`model_config` completed from the training data (e.g. a prior's K from its codes)."""
    del dataset
    return model_config

  def load_pretrained(self, load_trained: Callable) -> None:
    """Takes in fixed weights of other runs (e.g. the VQ-VAE's perceptual network
    features:DIR): `setup` calls it on the new model with `load_trained(workdir)` -> the
    `TrainedModel` (model, image_shape) trained there. Refuses, in one line, what cannot be
    loaded or does not fit."""
    del load_trained

  @property
  def num_initialization_batches(self) -> int:
    """How many first training batches `initialize_from_data` wants (0: no initialisation)."""
    return 0

  def initialize_from_data(self, batches: jax.Array, key: jax.Array) -> None:
    """Called once before the first step with the first training batches [n, B, ...]."""

  def update_after_step(self, out: ModelOutput, key: jax.Array, step: jax.Array) -> dict:
    """State updates of a training step besides the optimizer's; returns metrics."""
    del out, key, step
    return {}

  def final_metrics_examples(self, num_test: int) -> int:
    """On how many of the `num_test` test examples the final evaluation computes
    `final_metrics` (0: none)."""
    del num_test
    return 0

  def final_metrics(self, x: jax.Array, key: jax.Array) -> dict:
    """Costly test metrics computed at the last step only: name -> [B]."""
    del x, key
    return {}

  def generate(self, key: jax.Array, num: int, reference: jax.Array) -> Optional[jax.Array]:
    """`num` new images in [0, 1] for the evaluation's picture, or None if the model has none
    to show on its own (a prior's come from `jaxvq sample`)."""
    del key, num, reference
    return None


@runtime_checkable
class CodeUsage(Protocol):
  """A model that maps its inputs to codes: the evaluation counts how often each is used."""

  def code_counts(self, out: ModelOutput, weights: jax.Array) -> jax.Array:
    """How often each code is used in the batch `out` came from, each example weighted by
    `weights` [B]: [S, K] (S: one row, or one per residual stage)."""
