"""The PatchGAN discriminator (Isola et al. 2017, section 3.2.2), as taming-transformers'
NLayerDiscriminator: images [B, H, W, C] in [0, 1] -> one logit per patch [B, h, w, 1].

A 4x4 stride-2 convolution and LeakyReLU(0.2), then num_layers - 1 more of them with a norm,
one stride-1 4x4 convolution with a norm, and a stride-1 4x4 convolution to 1 channel; the
widths are hidden x min(2^n, 8). Kernels are drawn from N(0, 0.02) as taming's
weights_init. The norm is GroupNorm, not taming's BatchNorm: it normalises each image by
itself, so the discriminator keeps no running statistics and a step on 8 devices computes
what one device does.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx

from jaxvq.errors import ConfigError
from jaxvq.nets.layers import Conv


def _groups(channels: int, most: int = 32) -> int:
  """The most groups (at most `most`) that divide `channels` evenly."""
  return max(g for g in range(1, min(most, channels) + 1) if channels % g == 0)


def patch_grid(height: int, width: int, num_layers: int) -> tuple:
  """(h, w) of the logits of an H x W image: each stride-2 layer halves (rounding down), each
  stride-1 4x4 layer with padding 1 takes one off."""
  return tuple(size // 2 ** num_layers - 2 for size in (height, width))


class PatchDiscriminator(nnx.Module):
  """[B, H, W, C] in [0, 1] -> [B, H / 2^L - 2, W / 2^L - 2, 1] float32 logits (L =
  num_layers), one per overlapping patch of the image."""

  def __init__(self, image_shape, hidden: int = 64, num_layers: int = 3, *,
               dtype=jnp.float32, rngs: nnx.Rngs):
    height, width, channels = image_shape
    grid = patch_grid(height, width, num_layers)
    if min(grid) < 1:
      raise ConfigError(
          f"config.model.disc_layers={num_layers} halves the {height}x{width} images "
          f"{num_layers} times, leaving no patch to judge: use at most "
          f"{max(int(math.log2(min(height, width) / 3)), 1)} layers, or larger images")
    init = nnx.initializers.normal(0.02)
    conv = lambda i, o, stride, use_bias=True: Conv(i, o, 4, stride, 1, kernel_init=init,
                                                    use_bias=use_bias, dtype=dtype, rngs=rngs)
    widths = [hidden * min(2 ** n, 8) for n in range(num_layers + 1)]
    self.first = conv(channels, widths[0], 2)
    # Layers 1 .. L - 1 halve the image; layer L keeps its size. A norm follows each, so
    # they have no bias (as taming's with BatchNorm).
    self.convs = nnx.List([conv(widths[n - 1], widths[n], 2 if n < num_layers else 1, False)
                           for n in range(1, num_layers + 1)])
    self.norms = nnx.List([nnx.GroupNorm(w, num_groups=_groups(w), dtype=dtype, rngs=rngs)
                           for w in widths[1:]])
    self.out = conv(widths[-1], 1, 1)

  def __call__(self, x: jax.Array) -> jax.Array:
    h = nnx.leaky_relu(self.first(2.0 * x - 1.0), 0.2)
    for conv, norm in zip(self.convs, self.norms):
      h = nnx.leaky_relu(norm(conv(h)), 0.2)
    return self.out(h).astype(jnp.float32)
