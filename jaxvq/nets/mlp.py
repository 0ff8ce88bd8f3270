"""A fully connected encoder or decoder."""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from flax import nnx


class MLP(nnx.Module):
  """Flattens its input, ReLU hidden layers, a linear layer reshaped to `out_shape`."""

  def __init__(self, in_features, hidden_sizes, out_shape, *, dtype=jnp.float32, rngs):
    sizes = [in_features, *hidden_sizes, int(np.prod(out_shape))]
    self.layers = nnx.List([nnx.Linear(a, b, dtype=dtype, rngs=rngs)
                            for a, b in zip(sizes[:-1], sizes[1:])])
    self.out_shape = tuple(out_shape)

  def __call__(self, x):
    x = x.reshape(x.shape[0], -1).astype(self.layers[0].dtype)
    for layer in self.layers[:-1]:
      x = nnx.relu(layer(x))
    return self.layers[-1](x).astype(jnp.float32).reshape((-1,) + self.out_shape)
