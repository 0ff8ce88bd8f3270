"""What every model returns and may do, so that one training loop serves them all."""
from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp
from flax import nnx, struct


@struct.dataclass
class ModelOutput:
  loss: jax.Array                  # scalar that training minimises
  per_example: dict                # name -> [B]; evaluation averages them over the test set
  reconstruction: Optional[jax.Array]  # [B, H, W, C] in [0, 1] for image grids (None: a prior)
  code_indices: Optional[jax.Array] = None  # [B, h, w] int32, VQ models only
  latents: Optional[jax.Array] = None       # [B, h, w, d] what was quantized, VQ models only
  batch_metrics: dict = struct.field(default_factory=dict)  # scalars of this batch only


class ImageModel(nnx.Module):
  """Hooks of the training loop; a model overrides those it needs.

  Every model is called as `model(inputs, key, labels)` -> ModelOutput, where
  `labels` [B] int are the class labels (used by class-conditional models).
  """

  def initialize_from_data(self, batches: jax.Array, key: jax.Array) -> None:
    """Called once before the first step with the first training batches [n, B, H, W, C]."""

  def update_after_step(self, out: ModelOutput, key: jax.Array, step: jax.Array) -> dict:
    """State updates of a training step besides the optimizer's; returns metrics."""
    return {}

  def generate(self, key: jax.Array, num: int, reference: jax.Array) -> Optional[jax.Array]:
    """`num` new images in [0, 1], or None if the model cannot generate on its own."""
    return None


def per_example_mean(x: jax.Array) -> jax.Array:
  """Mean over every axis but the first: [B, ...] -> [B]."""
  return jnp.mean(x.reshape(x.shape[0], -1), axis=1)
