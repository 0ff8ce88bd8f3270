"""The nets' layers: a convolution, a 2x upsampler, and a padded convolution as one matmul (the
PixelCNN's causal stacks), with nnx parameters."""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from jaxvq.ops.conv_kernels import conv2d, transposed_conv_4x4_stride_2


class Conv(nnx.Module):
  """A 2-D convolution (NHWC) with nnx.Conv's parameters and initialisation, run by `conv2d`."""

  def __init__(self, in_features: int, out_features: int, kernel_size: int, stride: int = 1,
               padding: int = 0, *, kernel_init=None, use_bias: bool = True,
               dtype=jnp.float32, rngs: nnx.Rngs):
    init = kernel_init or nnx.initializers.lecun_normal()
    self.kernel = nnx.Param(init(rngs.params(), (kernel_size, kernel_size, in_features,
                                                 out_features), jnp.float32))
    self.use_bias = use_bias   # False before a norm, which would take the bias out again
    if use_bias:
      # nnx.Conv draws a key for its zero bias too: the same draws give the same initial model.
      self.bias = nnx.Param(nnx.initializers.zeros_init()(rngs.params(), (out_features,),
                                                          jnp.float32))
    self.stride, self.padding, self.dtype = stride, ((padding, padding), (padding, padding)), dtype

  def __call__(self, x: jax.Array) -> jax.Array:
    y = conv2d(x.astype(self.dtype), self.kernel[...].astype(self.dtype), self.stride,
               self.padding)
    return y + self.bias[...].astype(self.dtype) if self.use_bias else y


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


class PaddedConv(nnx.Module):
  """A stride-1 convolution with explicit (one-sided) padding, computed as one matmul.

  The kh x kw shifted views of the padded input are concatenated along the
  channels and multiplied by the kernel: the same function as
  lax.conv_general_dilated, but a matrix product's gradient is two matrix
  products, where XLA's CPU backend computes a small convolution's gradient
  far more slowly than its forward pass.
  """

  def __init__(self, in_features: int, out_features: int, kernel_size, padding, *,
               rngs: nnx.Rngs):
    self.kernel_size, self.padding = tuple(kernel_size), tuple(padding)
    kh, kw = self.kernel_size
    init = nnx.initializers.lecun_normal()
    self.kernel = nnx.Param(init(rngs.params(), (kh * kw * in_features, out_features)))
    self.bias = nnx.Param(jnp.zeros((out_features,)))

  def __call__(self, x: jax.Array) -> jax.Array:
    """[B, H, W, I] -> [B, H + pads - kh + 1, W + pads - kw + 1, O]."""
    (top, bottom), (left, right) = self.padding
    kh, kw = self.kernel_size
    x = jnp.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
    out_h, out_w = x.shape[1] - kh + 1, x.shape[2] - kw + 1
    patches = jnp.concatenate([x[:, dy:dy + out_h, dx:dx + out_w]
                               for dy in range(kh) for dx in range(kw)], axis=-1)
    return patches @ self.kernel[...] + self.bias[...]

  def at(self, window: jax.Array) -> jax.Array:
    """The output at one position from its receptive field: [B, kh, kw, I] -> [B, O]."""
    return window.reshape(window.shape[0], -1) @ self.kernel[...] + self.bias[...]


