"""The VQ-VAE paper's convolutional encoder and decoder (van den Oord et al. 2017, section 4).

Images are NHWC in [0, 1]. `ConvEncoder` halves the resolution twice with 4x4
stride-2 convolutions, then a 3x3 convolution, residual blocks
(ReLU, 3x3 conv, ReLU, 1x1 conv) and a 1x1 convolution to the latent width;
`ConvDecoder` mirrors it with two 4x4 stride-2 transposed convolutions. A
28x28 image has a 7x7 latent grid, a 32x32 image an 8x8 one.
`ConvToVector`/`VectorToConv` flatten the grid to a latent vector and back.
"""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxvq.nets.layers import Conv, Upsample2x


def _conv(i, o, k, stride=1, *, dtype, rngs):
  pad = (k - stride) // 2 if stride > 1 else (k - 1) // 2
  return Conv(i, o, k, stride, pad, dtype=dtype, rngs=rngs)


class ResidualBlock(nnx.Module):
  """x + conv1x1(relu(conv3x3(relu(x))))."""

  def __init__(self, hidden: int, residual_hidden: int, *, dtype, rngs):
    self.conv3 = _conv(hidden, residual_hidden, 3, dtype=dtype, rngs=rngs)
    self.conv1 = _conv(residual_hidden, hidden, 1, dtype=dtype, rngs=rngs)

  def __call__(self, x):
    return x + self.conv1(nnx.relu(self.conv3(nnx.relu(x))))


class ResidualStack(nnx.Module):
  """`num_blocks` residual blocks, then a ReLU."""

  def __init__(self, hidden: int, residual_hidden: int, num_blocks: int, *, dtype, rngs):
    self.blocks = nnx.List([ResidualBlock(hidden, residual_hidden, dtype=dtype, rngs=rngs)
                            for _ in range(num_blocks)])

  def __call__(self, x):
    for block in self.blocks:
      x = block(x)
    return nnx.relu(x)


class ConvEncoder(nnx.Module):
  """[B, H, W, C] in [0, 1] -> [B, H/4, W/4, out_features]."""

  def __init__(self, in_channels, hidden, residual_hidden, num_residual_blocks,
               out_features, *, dtype=jnp.float32, rngs):
    self.down1 = _conv(in_channels, hidden // 2, 4, 2, dtype=dtype, rngs=rngs)
    self.down2 = _conv(hidden // 2, hidden, 4, 2, dtype=dtype, rngs=rngs)
    self.conv = _conv(hidden, hidden, 3, dtype=dtype, rngs=rngs)
    self.residual = ResidualStack(hidden, residual_hidden, num_residual_blocks,
                                  dtype=dtype, rngs=rngs)
    self.out = _conv(hidden, out_features, 1, dtype=dtype, rngs=rngs)

  def __call__(self, x):
    x = nnx.relu(self.down1(x - 0.5))
    x = nnx.relu(self.down2(x))
    # The latent math (quantizer, KL, sampling) is float32 whatever the nets compute in.
    return self.out(self.residual(self.conv(x))).astype(jnp.float32)


class ConvDecoder(nnx.Module):
  """[B, h, w, in_features] -> [B, 4h, 4w, out_channels] (unbounded)."""

  def __init__(self, in_features, hidden, residual_hidden, num_residual_blocks,
               out_channels, *, dtype=jnp.float32, rngs):
    self.conv = _conv(in_features, hidden, 3, dtype=dtype, rngs=rngs)
    self.residual = ResidualStack(hidden, residual_hidden, num_residual_blocks,
                                  dtype=dtype, rngs=rngs)
    self.up1 = Upsample2x(hidden, hidden // 2, dtype=dtype, rngs=rngs)
    self.up2 = Upsample2x(hidden // 2, out_channels, dtype=dtype, rngs=rngs)

  def __call__(self, z):
    x = self.residual(self.conv(z))
    return self.up2(nnx.relu(self.up1(x))).astype(jnp.float32)


class ConvToVector(nnx.Module):
  """A conv encoder whose [B, h, w, C] output is flattened and mapped linearly to [B, out]."""

  def __init__(self, conv_encoder: ConvEncoder, grid_features: int, out_features: int, *,
               dtype=jnp.float32, rngs):
    self.conv = conv_encoder
    self.out = nnx.Linear(grid_features, out_features, dtype=dtype, rngs=rngs)

  def __call__(self, x):
    h = nnx.relu(self.conv(x))
    return self.out(h.reshape(h.shape[0], -1)).astype(jnp.float32)


class VectorToConv(nnx.Module):
  """A linear map of [B, in] to a [B, h, w, C] grid, then a conv decoder."""

  def __init__(self, in_features: int, grid_shape, conv_decoder: ConvDecoder, *,
               dtype=jnp.float32, rngs):
    self.grid_shape = tuple(grid_shape)
    self.linear = nnx.Linear(in_features, int(np.prod(grid_shape)), dtype=dtype, rngs=rngs)
    self.conv = conv_decoder

  def __call__(self, z):
    h = nnx.relu(self.linear(z)).reshape((-1,) + self.grid_shape)
    return self.conv(h)
