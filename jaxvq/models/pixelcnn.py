"""Gated PixelCNN prior over VQ-VAE code grids (van den Oord et al., 2016).

The grid [B, h, w] of code indices is modelled autoregressively in raster
order: p(c) = prod_{i,j} p(c_ij | c_<ij). Code indices are embedded; a
vertical stack sees the rows above, a horizontal stack the codes to the left
in the current row, and the vertical stack feeds the horizontal one after a
one-row shift, so that there is no blind spot. Gates are tanh(a) * sigmoid(b),
with an optional class-conditional bias; the horizontal stack is residual and
every layer adds to a skip sum that two 1x1 layers turn into K logits.

Causality comes from shifts and one-sided padding, not masks:
  vertical conv   kernel (k//2 + 1, k), padded k//2 rows above: row i sees rows i - k//2 .. i
  down shift      the vertical features of row i - 1 go to row i of the horizontal stack
  horizontal conv kernel (1, k//2 + 1), padded k//2 columns left: sees columns j - k//2 .. j
  the horizontal stack's input is shifted one column right, so position
  (i, j) never sees code (i, j).
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx

from jaxvq.models.base import ImageModel, ModelOutput


def down_shift(x: jax.Array) -> jax.Array:
  """[B, h, w, C]: row i gets row i - 1 (zeros in row 0)."""
  return jnp.pad(x, ((0, 0), (1, 0), (0, 0), (0, 0)))[:, :-1]


def right_shift(x: jax.Array) -> jax.Array:
  """[B, h, w, C]: column j gets column j - 1 (zeros in column 0)."""
  return jnp.pad(x, ((0, 0), (0, 0), (1, 0), (0, 0)))[:, :, :-1]


class GatedLayer(nnx.Module):

  def __init__(self, channels: int, kernel_size: int, num_classes: int, *, rngs: nnx.Rngs):
    half = kernel_size // 2
    self.vertical = nnx.Conv(channels, 2 * channels, (half + 1, kernel_size),
                             padding=((half, 0), (half, half)), rngs=rngs)
    self.horizontal = nnx.Conv(channels, 2 * channels, (1, half + 1),
                               padding=((0, 0), (half, 0)), rngs=rngs)
    self.vertical_to_horizontal = nnx.Conv(2 * channels, 2 * channels, (1, 1), rngs=rngs)
    self.horizontal_out = nnx.Conv(channels, channels, (1, 1), rngs=rngs)
    self.skip = nnx.Conv(channels, channels, (1, 1), rngs=rngs)
    self.class_bias = (nnx.Embed(num_classes, 4 * channels, rngs=rngs) if num_classes else None)

  def __call__(self, v, h, labels, *, first: bool):
    """v, h: [B, h, w, C] -> new v, new h, skip contribution."""
    v_features = self.vertical(v)                                         # [B, h, w, 2C]
    h_features = self.horizontal(h) + self.vertical_to_horizontal(down_shift(v_features))
    if self.class_bias is not None:
      v_bias, h_bias = jnp.split(self.class_bias(labels)[:, None, None, :], 2, axis=-1)
      v_features, h_features = v_features + v_bias, h_features + h_bias
    gate = lambda x: (lambda a, b: jnp.tanh(a) * jax.nn.sigmoid(b))(*jnp.split(x, 2, axis=-1))
    v_out, h_gated = gate(v_features), gate(h_features)
    h_out = self.horizontal_out(h_gated)
    return v_out, (h_out if first else h + h_out), self.skip(h_gated)


class PixelCNNPrior(ImageModel):
  """p(codes | label) over [h, w] grids of K codes."""

  def __init__(self, cfg, grid_shape, *, data_variance: float = 1.0, dtype=jnp.float32,
               rngs: nnx.Rngs):
    del data_variance, dtype
    if cfg.num_codes < 2:
      raise ValueError(f"model.num_codes (K) must be at least 2, got {cfg.num_codes}")
    self.grid_shape = tuple(grid_shape[:2])
    self.num_codes = cfg.num_codes
    self.num_classes = cfg.num_classes if cfg.class_conditional else 0
    self.image_dims = int(cfg.image_dims)  # pixels x channels of the images the codes stand for
    c = cfg.channels
    self.embed = nnx.Embed(cfg.num_codes, c, rngs=rngs)
    self.layers = nnx.List([GatedLayer(c, cfg.kernel_size, self.num_classes, rngs=rngs)
                            for _ in range(cfg.num_layers)])
    self.head_hidden = nnx.Conv(c, cfg.head_channels, (1, 1), rngs=rngs)
    self.head_out = nnx.Conv(cfg.head_channels, cfg.num_codes, (1, 1), rngs=rngs)

  def logits_from_embeddings(self, embedded: jax.Array, labels=None) -> jax.Array:
    """[B, h, w, C] embedded codes -> [B, h, w, K] logits of each position given those before it."""
    # The vertical stack may see row i itself: it reaches row i of the
    # horizontal stack only through down_shift, i.e. as rows <= i - 1.
    v, h = embedded, right_shift(embedded)
    skip = 0.0
    for n, layer in enumerate(self.layers):
      v, h, s = layer(v, h, labels, first=n == 0)
      skip = skip + s
    return self.head_out(nnx.relu(self.head_hidden(nnx.relu(skip))))

  def logits(self, codes: jax.Array, labels=None) -> jax.Array:
    """[B, h, w] int codes -> [B, h, w, K] logits."""
    return self.logits_from_embeddings(self.embed(codes), self._labels(labels, codes.shape[0]))

  def _labels(self, labels, batch):
    if not self.num_classes:
      return None
    return jnp.zeros((batch,), jnp.int32) if labels is None else labels

  def __call__(self, codes: jax.Array, key: jax.Array, labels=None) -> ModelOutput:
    del key
    logits = self.logits(codes, labels)
    nll = -jnp.take_along_axis(jax.nn.log_softmax(logits), codes[..., None], axis=-1)[..., 0]
    nats = jnp.sum(nll.reshape(nll.shape[0], -1), axis=1)               # [B] per grid
    positions = math.prod(self.grid_shape)
    return ModelOutput(
        loss=jnp.mean(nats) / positions,
        per_example={"loss": nats / positions,
                     "bits_per_code": nats / (positions * math.log(2.0)),
                     "bits_per_image_dim": nats / (self.image_dims * math.log(2.0))},
        reconstruction=None)

  def sample(self, key: jax.Array, num: int, labels=None, temperature: float = 1.0) -> jax.Array:
    """`num` code grids [num, h, w], sampled position by position in one compiled loop."""
    height, width = self.grid_shape
    labels = self._labels(labels, num)

    def sample_position(position, codes):
      row, col = position // width, position % width
      logits = self.logits(codes, labels)[:, row, col]                   # [num, K]
      chosen = jax.random.categorical(jax.random.fold_in(key, position), logits / temperature)
      return codes.at[:, row, col].set(chosen.astype(codes.dtype))

    return jax.lax.fori_loop(0, height * width, sample_position,
                             jnp.zeros((num, height, width), jnp.int32))
