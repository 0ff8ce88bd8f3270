"""What every model returns and may do, so that one training loop serves them all."""
from __future__ import annotations

from typing import Any, Optional

import jax
import ml_collections
from flax import nnx, struct

from jaxvq.config import schema


@struct.dataclass
class ModelOutput:
  loss: jax.Array                  # scalar that training minimises
  per_example: dict                # name -> [B]; evaluation averages them over the test set
  reconstruction: Optional[jax.Array]  # [B, H, W, C] in [0, 1] for image grids (None: a prior)
  code_indices: Optional[jax.Array] = None  # [B, h, w] (or [B, h, w, Q]) int32, VQ models only
  quantizer_output: Any = None              # the VQ-VAE's QuantizerOutput, for its state updates
  batch_metrics: dict = struct.field(default_factory=dict)  # scalars of this batch only


class ImageModel(nnx.Module):
  """The interface between a model and the training loop; a model overrides what it needs.

  Every model is called as `model(inputs, key, labels, training)` -> ModelOutput, where
  `labels` [B] int are the class labels (used by class-conditional models) and
  `training` is True in the train step only (e.g. for quantizer dropout).
  Its class gives its config section (`CONFIG`, the keys of `config.model`) and
  may complete that section from the data it trains on (`configure`).
  """

  CONFIG: dict = {}
  # The metrics of its one-line console summaries, after the loss.
  SUMMARY_METRICS: tuple = ()

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
  def configure(cls, model_config, dataset):
    """`model_config` completed from the training data (e.g. a prior's K from its codes)."""
    del dataset
    return model_config

  @classmethod
  def legacy_state_path(cls, path: tuple) -> tuple:
    """Where a variable an earlier jaxvq saved at `path` (a tuple of names) lives now."""
    return path

  @property
  def num_initialization_batches(self) -> int:
    """How many first training batches `initialize_from_data` wants (0: no initialisation)."""
    return 0

  def initialize_from_data(self, batches: jax.Array, key: jax.Array) -> None:
    """Called once before the first step with the first training batches [n, B, H, W, C]."""

  def update_after_step(self, out: ModelOutput, key: jax.Array, step: jax.Array) -> dict:
    """State updates of a training step besides the optimizer's; returns metrics."""
    return {}

  def code_counts(self, indices: jax.Array, weights: jax.Array | None = None) -> jax.Array:
    """VQ models: how often each code is used in `indices` (weights [B]): [S, K]."""
    raise NotImplementedError

  def final_metrics_examples(self, num_test: int) -> int:
    """On how many of the `num_test` test examples the final evaluation computes
    `final_metrics` (0: none)."""
    del num_test
    return 0

  def final_metrics(self, x: jax.Array, key: jax.Array) -> dict:
    """Costly test metrics computed at the last step only: name -> [B]."""
    return {}

  def generate(self, key: jax.Array, num: int, reference: jax.Array) -> Optional[jax.Array]:
    """`num` new images in [0, 1], or None if the model cannot generate on its own."""
    return None
