"""The conv nets' layers: a convolution and a 2x upsampler, with nnx parameters."""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from jaxvq.ops.conv_kernels import conv2d, transposed_conv_4x4_stride_2


class Conv(nnx.Module):
  """A 2-D convolution (NHWC) with nnx.Conv's parameters and initialisation, run by `conv2d`."""

  def __init__(self, in_features: int, out_features: int, kernel_size: int, stride: int = 1,
               padding: int = 0, *, dtype=jnp.float32, rngs: nnx.Rngs):
    init = nnx.initializers.lecun_normal()
    self.kernel = nnx.Param(init(rngs.params(), (kernel_size, kernel_size, in_features,
                                                 out_features), jnp.float32))
    # nnx.Conv draws a key for its zero bias too: the same draws give the same initial model.
    self.bias = nnx.Param(nnx.initializers.zeros_init()(rngs.params(), (out_features,),
                                                        jnp.float32))
    self.stride, self.padding, self.dtype = stride, ((padding, padding), (padding, padding)), dtype

  def __call__(self, x: jax.Array) -> jax.Array:
    y = conv2d(x.astype(self.dtype), self.kernel[...].astype(self.dtype), self.stride,
               self.padding)
    return y + self.bias[...].astype(self.dtype)


class Upsample2x(nnx.Module):
  """A 4x4, stride-2 transposed convolution: [B, H, W, I] -> [B, 2H, 2W, O]."""

  def __init__(self, in_features: int, out_features: int, *, dtype=jnp.float32,
               rngs: nnx.Rngs):
    # Each output pixel reads 2x2 of the 4x4 taps, so the effective fan-in is
    # 4 * I, not the 16 * I that variance_scaling counts: scale 4 gives LeCun's 1 / (4 I).
    init = nnx.initializers.variance_scaling(4.0, "fan_in", "truncated_normal",
                                             in_axis=(0, 1, 2), out_axis=3)
    self.kernel = nnx.Param(init(rngs.params(), (4, 4, in_features, out_features)))
    self.bias = nnx.Param(jnp.zeros((out_features,)))
    self.dtype = dtype

  def __call__(self, x: jax.Array) -> jax.Array:
    y = transposed_conv_4x4_stride_2(x.astype(self.dtype), self.kernel[...].astype(self.dtype))
    return y + self.bias[...].astype(self.dtype)
