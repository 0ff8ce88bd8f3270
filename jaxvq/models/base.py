"""What every model returns, so that one training loop serves them all."""
from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class ModelOutput:
  loss: jax.Array                  # scalar that training minimises
  per_example: dict                # name -> [B]; evaluation averages them over the test set
  reconstruction: jax.Array        # [B, H, W, C] in [0, 1], for image grids
  code_indices: Optional[jax.Array] = None  # [B, h, w] int32, VQ models only
  batch_metrics: dict = struct.field(default_factory=dict)  # scalars of this batch only


def per_example_mean(x: jax.Array) -> jax.Array:
  """Mean over every axis but the first: [B, ...] -> [B]."""
  return jnp.mean(x.reshape(x.shape[0], -1), axis=1)
