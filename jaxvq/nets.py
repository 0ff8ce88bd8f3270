"""Encoders and decoders shared by every model.

The convolutional pair is the VQ-VAE paper's residual network; images are
NHWC throughout. `ConvEncoder` halves the resolution twice and `ConvDecoder`
doubles it twice, so a 28x28 image has a 7x7 latent grid and a 32x32 image an
8x8 one. The transposed convolution, and on CPU the strided one, have
hand-written backward passes (jax.custom_vjp): the networks have reverse-mode
derivatives (jax.grad, jax.vjp, jax.jacrev) but no forward-mode ones (jax.jvp,
jax.jacfwd).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxvq.errors import ConfigError


def lax_conv2d(x: jax.Array, kernel: jax.Array, stride: int, padding) -> jax.Array:
  """lax.conv_general_dilated with NHWC images and HWIO kernels."""
  return jax.lax.conv_general_dilated(x, kernel, (stride, stride), padding,
                                      dimension_numbers=("NHWC", "HWIO", "NHWC"))


_PAD_1 = ((1, 1), (1, 1))


def conv2d(x: jax.Array, kernel: jax.Array, stride: int = 1, padding=((0, 0), (0, 0))):
  """[B, H, W, I] * [kh, kw, I, O] -> [B, H', W', O], as lax.conv_general_dilated computes it.

  A 1x1 kernel is a matrix product, the same multiply-adds: under XLA's
  YNNPACK convolutions it was the faster of the two on CPU; with jaxvq's XLA
  options a whole train step measured the same either way (README,
  "Performance"). On CPU, a 4x4, stride-2, padding-1 convolution of an
  even-sized image takes its input gradient from `conv_4x4_stride_2`; other
  platforms keep XLA's.
  """
  kh, kw, i, o = kernel.shape
  if kh == kw == 1 and padding == ((0, 0), (0, 0)):
    return x[:, ::stride, ::stride] @ kernel.reshape(i, o)
  if (kh, kw, stride) == (4, 4, 2) and padding == _PAD_1 and (
      x.shape[1] % 2 == 0 and x.shape[2] % 2 == 0):
    return jax.lax.platform_dependent(x, kernel, cpu=conv_4x4_stride_2,
                                      default=lambda v, k: lax_conv2d(v, k, 2, _PAD_1))
  return lax_conv2d(x, kernel, stride, padding)


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


def _taps_weights(kernel: jax.Array) -> jax.Array:
  """[4, 4, I, O] -> [I, 16 O]: tap r = 2q + p of each axis, ordered (qy, py, qx, px, O)."""
  i, o = kernel.shape[2:]
  return kernel.reshape(2, 2, 2, 2, i, o).transpose(4, 0, 1, 2, 3, 5).reshape(i, 16 * o)


def _taps_kernel(weights: jax.Array) -> jax.Array:
  """The inverse of `_taps_weights`: [I, 16 O] -> [4, 4, I, O]."""
  i, o = weights.shape[0], weights.shape[1] // 16
  return weights.reshape(i, 2, 2, 2, 2, o).transpose(1, 2, 3, 4, 0, 5).reshape(4, 4, i, o)


def _overlap_add(taps: jax.Array, b: int, h: int, w: int) -> jax.Array:
  """[B H W, 16 O] taps -> [B, 2H, 2W, O].

  Block (qy, qx) of the taps of input pixel (m, n) lands on pixel (m + qy, n + qx)
  of the [B, H+1, W+1, 2, 2, O] grid of output parities.
  """
  o = taps.shape[-1] // 16
  taps = taps.reshape(b, h, w, 2, 2, 2, 2, o)
  out = 0
  for qy in (0, 1):
    for qx in (0, 1):
      out = out + jnp.pad(taps[:, :, :, qy, :, qx],
                          ((0, 0), (qy, 1 - qy), (qx, 1 - qx), (0, 0), (0, 0), (0, 0)))
  # [B, H+1, W+1, py, px, O] -> [B, 2H+2, 2W+2, O], less the padding pixel on each side
  out = out.transpose(0, 1, 3, 2, 4, 5).reshape(b, 2 * h + 2, 2 * w + 2, o)
  return out[:, 1:-1, 1:-1]


def _overlap_add_adjoint(grad: jax.Array) -> jax.Array:
  """The transpose of `_overlap_add`: [B, 2H, 2W, O] -> [B H W, 16 O].

  Each tap reads the one output pixel it was added to, so this is a gather:
  four shifted windows of the padded gradient, stacked. Written out it is one
  copy; the transpose JAX derives from `_overlap_add` pads each window with
  zeros and adds the four, about twice as slow on CPU.
  """
  b, h2, w2, o = grad.shape
  h, w = h2 // 2, w2 // 2
  padded = jnp.pad(grad, ((0, 0), (1, 1), (1, 1), (0, 0))).reshape(b, h + 1, 2, w + 1, 2, o)
  rows = [jnp.stack([padded[:, qy:qy + h, :, qx:qx + w] for qx in (0, 1)], axis=4)
          for qy in (0, 1)]                             # each [B, H, py, W, qx, px, O]
  taps = jnp.stack(rows, axis=2)                        # [B, H, qy, py, W, qx, px, O]
  return taps.transpose(0, 1, 4, 2, 3, 5, 6, 7).reshape(b * h * w, 16 * o)


def _matmul(a: jax.Array, b: jax.Array, dtype) -> jax.Array:
  """a @ b summed in float32, as a convolution accumulates, then rounded once to `dtype`."""
  return jnp.matmul(a, b, preferred_element_type=jnp.float32).astype(dtype)


@jax.custom_vjp
def transposed_conv_4x4_stride_2(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """PyTorch's ConvTranspose2d(4, stride=2, padding=1): [B, H, W, I], [4, 4, I, O] -> [B, 2H, 2W, O].

  Input pixel i adds in[i] @ kernel[r] to output pixel 2i - 1 + r (per axis), so
  the layer is one matrix product, every input pixel times all 16 taps, followed
  by an overlap-add: writing r = 2q + p, the product's block q lands one input
  pixel further on, at parity p. This does exactly the transposed convolution's
  multiply-adds, as a dense matrix product; its gradients are the two matrix
  products of the taps' gradient, which is a gather of the output gradient
  (`_overlap_add_adjoint`). XLA's CPU backend runs it faster, forward plus
  backward, than a 3x3 convolution to 4*O channels plus depth-to-space (which
  multiplies 5 of each 9 taps by zero), and far faster than lax.conv_transpose
  (jaxvq.bench --formulations). The backward pass being jax.custom_vjp's, the
  function has reverse-mode derivatives of any order but no forward-mode one
  (jax.jvp, jax.jacfwd).
  """
  b, h, w, i = x.shape
  taps = _matmul(x.reshape(b * h * w, i), _taps_weights(kernel), jnp.float32)
  return _overlap_add(taps, b, h, w).astype(x.dtype)


def _transposed_conv_forward(x, kernel):
  return transposed_conv_4x4_stride_2(x, kernel), (x, kernel)


def _transposed_conv_backward(residuals, grad):
  x, kernel = residuals
  b, h, w, i = x.shape
  taps_grad = _overlap_add_adjoint(grad)                                     # [B H W, 16 O]
  x_grad = _matmul(taps_grad, _taps_weights(kernel).T, x.dtype).reshape(x.shape)
  kernel_grad = _taps_kernel(_matmul(x.reshape(b * h * w, i).T, taps_grad, kernel.dtype))
  return x_grad, kernel_grad


transposed_conv_4x4_stride_2.defvjp(_transposed_conv_forward, _transposed_conv_backward)


@jax.custom_vjp
def conv_4x4_stride_2(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """A 4x4, stride-2, padding-1 convolution: [B, 2H, 2W, I], [4, 4, I, O] -> [B, H, W, O].

  The forward pass and the kernel gradient are XLA's. The input gradient is the
  adjoint of the convolution, which is the 4x4 stride-2 transposed convolution
  with the kernel's channels swapped: `transposed_conv_4x4_stride_2`, one matrix
  product and an overlap-add. XLA's CPU backend computes it otherwise as a
  convolution over the zero-dilated output gradient, about twice as slow.
  Needs an even-sized image (an odd one has a row or column the transposed
  convolution does not reach). Like `transposed_conv_4x4_stride_2`, it has no
  forward-mode derivative (jax.jvp, jax.jacfwd).
  """
  if x.shape[1] % 2 or x.shape[2] % 2:
    raise ValueError(f"conv_4x4_stride_2 needs an even height and width, got {x.shape}")
  return lax_conv2d(x, kernel, 2, _PAD_1)


def _strided_conv_forward(x, kernel):
  return conv_4x4_stride_2(x, kernel), (x, kernel)


def _strided_conv_backward(residuals, grad):
  x, kernel = residuals
  x_grad = transposed_conv_4x4_stride_2(grad, kernel.transpose(0, 1, 3, 2))
  _, kernel_vjp = jax.vjp(lambda k: lax_conv2d(x, k, 2, _PAD_1), kernel)
  return x_grad, kernel_vjp(grad)[0]


conv_4x4_stride_2.defvjp(_strided_conv_forward, _strided_conv_backward)


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


def build_encoder_decoder(cfg, image_shape, *, encoder_out: int, decoder_in: int,
                          dtype=jnp.float32, rngs: nnx.Rngs):
  """The encoder/decoder pair named by `cfg.architecture`: "conv" (a latent grid of
  H/4 x W/4), "conv_vector" (the same nets with the grid flattened to a latent vector)
  or "mlp".

  Returns (encoder, decoder, latent_shape): the encoder maps [B, H, W, C] to
  [B, *latent_shape, encoder_out]; the decoder maps [B, *latent_shape,
  decoder_in] to [B, H, W, C]. latent_shape is () for a latent vector.
  """
  height, width, channels = image_shape
  if cfg.architecture in ("conv", "conv_vector"):
    if height % 4 or width % 4:
      raise ConfigError(
          f"the conv network halves the image twice, so its height and width must be "
          f"multiples of 4; got {height}x{width} (set config.image_size to e.g. 28 or 32)")
    conv_args = (cfg.hidden, cfg.residual_hidden, cfg.num_residual_blocks)
    grid = (height // 4, width // 4)
    if cfg.architecture == "conv":
      encoder = ConvEncoder(channels, *conv_args, encoder_out, dtype=dtype, rngs=rngs)
      decoder = ConvDecoder(decoder_in, *conv_args, channels, dtype=dtype, rngs=rngs)
      return encoder, decoder, grid
    grid_shape = grid + (cfg.hidden,)
    encoder = ConvToVector(
        ConvEncoder(channels, *conv_args, cfg.hidden, dtype=dtype, rngs=rngs),
        int(np.prod(grid_shape)), encoder_out, dtype=dtype, rngs=rngs)
    decoder = VectorToConv(
        decoder_in, grid_shape,
        ConvDecoder(cfg.hidden, *conv_args, channels, dtype=dtype, rngs=rngs), dtype=dtype,
        rngs=rngs)
    return encoder, decoder, ()
  if cfg.architecture == "mlp":
    hidden = tuple(cfg.mlp_hidden)
    encoder = MLP(height * width * channels, hidden, (encoder_out,), dtype=dtype, rngs=rngs)
    decoder = MLP(decoder_in, hidden[::-1], image_shape, dtype=dtype, rngs=rngs)
    return encoder, decoder, ()
  raise ConfigError(f"unknown model.architecture {cfg.architecture!r}: "
                    "use 'conv', 'conv_vector' or 'mlp'")
