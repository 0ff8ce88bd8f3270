"""The VQ-VAE paper's convolutional encoder and decoder (van den Oord et al. 2017, section 4).

Images are NHWC in [0, 1]. `ConvEncoder` halves the resolution twice with 4x4
stride-2 convolutions, then a 3x3 convolution, residual blocks
(ReLU, 3x3 conv, ReLU, 1x1 conv) and a 1x1 convolution to the latent width;
`ConvDecoder` mirrors it with two 4x4 stride-2 transposed convolutions. A
28x28 image has a 7x7 latent grid, a 32x32 image an 8x8 one.
`ConvToVector`/`VectorToConv` flatten the grid to a latent vector and back.

More stride-2 stages shrink the grid further, f = 2^stages (8 or 16: a 128x128
image has a 16x16 or 8x8 grid), their widths given per stage by channel
multipliers as taming-transformers' `ch_mult` (`stage_widths`); the default,
two stages of multiplier 1, is the paper's network.
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


def stage_widths(hidden: int, channel_multipliers=(1, 1)) -> list:
  """Output channels of the encoder's stride-2 stages, top (image) to bottom:
  hidden x multiplier, and half of it for the first stage (the paper's hidden / 2, hidden
  for the default (1, 1)). The decoder's upsamplers go back through them in reverse."""
  widths = [hidden * m for m in channel_multipliers]
  widths[0] //= 2
  return widths


class ConvEncoder(nnx.Module):
  """[B, H, W, C] in [0, 1] -> [B, H/f, W/f, out_features], f = 2^len(channel_multipliers)
  (4 by default)."""

  def __init__(self, in_channels, hidden, residual_hidden, num_residual_blocks,
               out_features, *, channel_multipliers=(1, 1), dtype=jnp.float32, rngs):
    widths = stage_widths(hidden, channel_multipliers)
    self.num_stages = len(widths)
    # down1, down2, ...: the paper's network's names, so its parameters keep their paths.
    for stage, (i, o) in enumerate(zip([in_channels] + widths[:-1], widths)):
      setattr(self, f"down{stage + 1}", _conv(i, o, 4, 2, dtype=dtype, rngs=rngs))
    bottom = widths[-1]
    self.conv = _conv(bottom, bottom, 3, dtype=dtype, rngs=rngs)
    self.residual = ResidualStack(bottom, residual_hidden, num_residual_blocks,
                                  dtype=dtype, rngs=rngs)
    self.out = _conv(bottom, out_features, 1, dtype=dtype, rngs=rngs)

  def __call__(self, x):
    x = x - 0.5
    for stage in range(self.num_stages):
      x = nnx.relu(getattr(self, f"down{stage + 1}")(x))
    # The latent math (quantizer, KL, sampling) is float32 whatever the nets compute in.
    return self.out(self.residual(self.conv(x))).astype(jnp.float32)


class ConvDecoder(nnx.Module):
  """[B, h, w, in_features] -> [B, f h, f w, out_channels] (unbounded), f =
  2^len(channel_multipliers) (4 by default)."""

  def __init__(self, in_features, hidden, residual_hidden, num_residual_blocks,
               out_channels, *, channel_multipliers=(1, 1), dtype=jnp.float32, rngs):
    widths = stage_widths(hidden, channel_multipliers)[::-1]        # bottom to top
    self.num_stages = len(widths)
    self.conv = _conv(in_features, widths[0], 3, dtype=dtype, rngs=rngs)
    self.residual = ResidualStack(widths[0], residual_hidden, num_residual_blocks,
                                  dtype=dtype, rngs=rngs)
    for stage, (i, o) in enumerate(zip(widths, widths[1:] + [out_channels])):
      setattr(self, f"up{stage + 1}", Upsample2x(i, o, dtype=dtype, rngs=rngs))

  @property
  def output_layer(self) -> Upsample2x:
    """The last layer (VQGAN's adaptive weight balances the gradients at its kernel)."""
    return getattr(self, f"up{self.num_stages}")

  def hidden(self, z):
    """The output layer's input: __call__(z) is output_layer(hidden(z)) in float32."""
    x = self.residual(self.conv(z))
    for stage in range(self.num_stages):
      x = nnx.relu(x) if stage else x
      if stage < self.num_stages - 1:
        x = getattr(self, f"up{stage + 1}")(x)
    return x

  def __call__(self, z):
    return self.output_layer(self.hidden(z)).astype(jnp.float32)


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
