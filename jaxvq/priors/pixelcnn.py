"""Gated PixelCNN prior over VQ-VAE code grids (van den Oord et al. 2016, "Conditional Image
Generation with PixelCNN Decoders").

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

import jax
import jax.numpy as jnp
from flax import nnx

from jaxvq.errors import ConfigError
from jaxvq.nets.layers import PaddedConv
from jaxvq.ops.reduce import per_example_sum
from jaxvq.priors.base import PRIOR_FIELDS, Prior
from jaxvq.schema import Field


def down_shift(x: jax.Array) -> jax.Array:
  """[B, h, w, C]: row i gets row i - 1 (zeros in row 0)."""
  return jnp.pad(x, ((0, 0), (1, 0), (0, 0), (0, 0)))[:, :-1]


def right_shift(x: jax.Array) -> jax.Array:
  """[B, h, w, C]: column j gets column j - 1 (zeros in column 0)."""
  return jnp.pad(x, ((0, 0), (0, 0), (1, 0), (0, 0)))[:, :, :-1]


class GatedLayer(nnx.Module):

  def __init__(self, channels: int, kernel_size: int, num_classes: int, *, rngs: nnx.Rngs):
    half = kernel_size // 2
    self.vertical = PaddedConv(channels, 2 * channels, (half + 1, kernel_size),
                               ((half, 0), (half, half)), rngs=rngs)
    self.horizontal = PaddedConv(channels, 2 * channels, (1, half + 1), ((0, 0), (half, 0)),
                                 rngs=rngs)
    self.vertical_to_horizontal = nnx.Linear(2 * channels, 2 * channels, rngs=rngs)
    self.horizontal_out = nnx.Linear(channels, channels, rngs=rngs)
    self.skip = nnx.Linear(channels, channels, rngs=rngs)
    self.class_bias = (nnx.Embed(num_classes, 4 * channels, rngs=rngs) if num_classes else None)

  def class_biases(self, labels):
    """Per-class biases of the vertical and horizontal gates: 2 x [B, 1, 1, 2C] (or 0)."""
    if self.class_bias is None:
      return 0.0, 0.0
    return tuple(jnp.split(self.class_bias(labels)[:, None, None, :], 2, axis=-1))

  def horizontal_step(self, h, vertical_above, h_bias, *, first: bool):
    """h [B, r, w, C], vertical features of the row above [B, r, w, 2C] -> new h, skip."""
    return self.horizontal_gate(h, self.horizontal(h), vertical_above, h_bias, first=first)

  def horizontal_gate(self, h, h_conv, vertical_above, h_bias, *, first: bool):
    """The horizontal stack given its convolution's output h_conv (any [..., C] positions)."""
    h_gated = _gate(h_conv + self.vertical_to_horizontal(vertical_above) + h_bias)
    h_out = self.horizontal_out(h_gated)
    return (h_out if first else h + h_out), self.skip(h_gated)

  def __call__(self, v, h, labels, *, first: bool):
    """v, h: [B, h, w, C] -> new v, new h, skip contribution."""
    v_bias, h_bias = self.class_biases(labels)
    v_features = self.vertical(v)                                         # [B, h, w, 2C]
    h, skip = self.horizontal_step(h, down_shift(v_features), h_bias, first=first)
    return _gate(v_features + v_bias), h, skip


def _gate(x):
  a, b = jnp.split(x, 2, axis=-1)
  return jnp.tanh(a) * jax.nn.sigmoid(b)


class PixelCNNPrior(Prior):
  """p(codes | label) over [h, w] grids of K codes: codes [B, h, w] -> logits [B, h, w, K].

  Trains on a VQ-VAE run's codes (config.dataset = "codes:VQVAE_WORKDIR"); K, the
  classes and the images' size come from them (Prior.configure).
  """

  CONFIG = {
      "name": Field("pixelcnn", "the model", choices=("pixelcnn",)),
      "channels": Field(64, "channels of each gated layer", minimum=1),
      "num_layers": Field(8, "gated layers", minimum=1),
      "kernel_size": Field(3, "the stacks' kernel size (odd)", minimum=1),
      "head_channels": Field(256, "hidden channels of the output head", minimum=1),
      **PRIOR_FIELDS,
  }
  SAMPLERS = {"compiled_loop": "sample", "compiled_loop_without_cache": "sample_without_cache"}

  def __init__(self, cfg, grid_shape, *, dtype=jnp.float32, rngs: nnx.Rngs):
    super().__init__(cfg, grid_shape, dtype)
    c = cfg.channels
    self.embed = nnx.Embed(cfg.num_codes, c, rngs=rngs)
    self.kernel_size = cfg.kernel_size
    self.layers = nnx.List([GatedLayer(c, cfg.kernel_size, self.num_classes, rngs=rngs)
                            for _ in range(cfg.num_layers)])
    self.head_hidden = nnx.Linear(c, cfg.head_channels, rngs=rngs)
    self.head_out = nnx.Linear(cfg.head_channels, cfg.num_codes, rngs=rngs)

  def logits_from_embeddings(self, embedded: jax.Array, labels=None) -> jax.Array:
    """[B, h, w, C] embedded codes -> [B, h, w, K] logits of each position given those before it."""
    # The vertical stack may see row i itself: it reaches row i of the
    # horizontal stack only through down_shift, i.e. as rows <= i - 1.
    v, h = embedded, right_shift(embedded)
    skip = 0.0
    for n, layer in enumerate(self.layers):
      v, h, s = layer(v, h, labels, first=n == 0)
      skip = skip + s
    return self.head(skip)

  def head(self, skip):
    return self.head_out(nnx.relu(self.head_hidden(nnx.relu(skip))))

  def logits(self, codes: jax.Array, labels=None) -> jax.Array:
    """[B, h, w] int codes -> [B, h, w, K] logits."""
    return self.logits_from_embeddings(self.embed(codes),
                                       self.labels_or_default(labels, codes.shape[0]))

  def code_nll(self, codes: jax.Array, labels=None) -> jax.Array:
    """-log p(codes | label) in nats: [B, h, w] int codes -> [B]."""
    logits = self.logits(codes, labels)
    nll = -jnp.take_along_axis(jax.nn.log_softmax(logits), codes[..., None], axis=-1)[..., 0]
    return per_example_sum(nll)

  def sample_without_cache(self, key: jax.Array, num: int, labels=None,
                           temperature: float = 1.0) -> jax.Array:
    """Like `sample`, but one whole forward pass per position (the simple compiled loop)."""
    height, width = self.grid_shape
    labels = self.labels_or_default(labels, num)

    def sample_position(position, codes):
      row, col = position // width, position % width
      logits = self.logits(codes, labels)[:, row, col]                   # [num, K]
      chosen = jax.random.categorical(jax.random.fold_in(key, position), logits / temperature)
      return codes.at[:, row, col].set(chosen.astype(codes.dtype))

    return jax.lax.fori_loop(0, height * width, sample_position,
                             jnp.zeros((num, height, width), jnp.int32))

  def sample(self, key: jax.Array, num: int, labels=None, temperature: float = 1.0) -> jax.Array:
    """`num` code grids [num, h, w], sampled position by position in one compiled loop.

    Draws what `sample_without_cache` draws, with less work: the vertical
    stack of a finished row never changes, so it is computed once per row, for
    that row only (from a cache of every layer's earlier rows); and each
    position runs every layer's horizontal stack and the head at that position
    only, from a cache of the layers' inputs at the earlier positions of its row.
    """
    height, width = self.grid_shape
    half = self.kernel_size // 2
    labels = self.labels_or_default(labels, num)
    num_layers, channels = len(self.layers), self.embed.embedding.shape[-1]
    biases = [layer.class_biases(labels) for layer in self.layers]
    # Inputs of each layer's vertical stack, rows so far, with `half` zero rows on top.
    vertical_inputs = jnp.zeros((num_layers, num, height + half, width, channels))
    # Each layer's vertical features of the row above the current one (zeros above row 0).
    above = jnp.zeros((num_layers, num, 1, width, 2 * channels))

    h_biases = [b if isinstance(b, float) else b[:, 0, 0] for _, b in biases]   # [num, 2C]

    def sample_row(row, carry):
      codes, vertical_inputs, above = carry
      # Inputs of each layer's horizontal stack along this row, `half` zero columns on the left.
      row_inputs = jnp.zeros((num_layers, num, 1, width + half, channels))

      def sample_position(col, carry):
        codes, row_inputs = carry
        # The first layer sees the code to the left (right_shift): zeros in column 0.
        h = self.embed(codes[:, row, jnp.maximum(col - 1, 0)]) * (col > 0)  # [num, C]
        skip = 0.0
        for n, layer in enumerate(self.layers):
          row_inputs = jax.lax.dynamic_update_slice(row_inputs, h[None, :, None, None],
                                                    (n, 0, 0, col + half, 0))
          window = jax.lax.dynamic_slice_in_dim(row_inputs[n], col, half + 1, axis=2)
          above_here = jax.lax.dynamic_index_in_dim(above[n][:, 0], col, axis=1, keepdims=False)
          h, s = layer.horizontal_gate(h, layer.horizontal.at(window), above_here, h_biases[n],
                                       first=n == 0)
          skip = skip + s
        logits = self.head(skip)                                          # [num, K]
        chosen = jax.random.categorical(
            jax.random.fold_in(key, row * width + col), logits / temperature)
        return codes.at[:, row, col].set(chosen.astype(codes.dtype)), row_inputs

      codes = jax.lax.fori_loop(0, width, sample_position, (codes, row_inputs))[0]
      v = self.embed(codes[:, row])[:, None]                              # [num, 1, w, C]
      for n, layer in enumerate(self.layers):
        vertical_inputs = jax.lax.dynamic_update_slice(
            vertical_inputs, v[None], (n, 0, row + half, 0, 0))
        window = jax.lax.dynamic_slice_in_dim(vertical_inputs[n], row, half + 1, axis=1)
        features = layer.vertical(window)[:, -1:]                         # [num, 1, w, 2C]
        above = above.at[n].set(features)
        v = _gate(features + biases[n][0])
      return codes, vertical_inputs, above

    codes = jnp.zeros((num, height, width), jnp.int32)
    return jax.lax.fori_loop(0, height, sample_row, (codes, vertical_inputs, above))[0]
