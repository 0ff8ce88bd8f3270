"""Fast kernels for the conv nets' strided layers, as pure functions (NHWC images, HWIO kernels).

The 4x4 stride-2 transposed convolution (the decoder's upsampler) is one
matrix product of every input pixel with all 16 taps followed by an
overlap-add, with its backward pass written out; the 4x4 stride-2
convolution takes its input gradient from it on CPU. Both compute exactly the
function of the lax convolution they replace (tests/test_nets.py).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp


def lax_conv2d(x: jax.Array, kernel: jax.Array, stride: int, padding) -> jax.Array:
  """lax.conv_general_dilated with NHWC images and HWIO kernels."""
  return jax.lax.conv_general_dilated(x, kernel, (stride, stride), padding,
                                      dimension_numbers=("NHWC", "HWIO", "NHWC"))


_PAD_1 = ((1, 1), (1, 1))


def conv2d(x: jax.Array, kernel: jax.Array, stride: int = 1, padding=((0, 0), (0, 0))):
  """[B, H, W, I] * [kh, kw, I, O] -> [B, H', W', O], as lax.conv_general_dilated computes it.

  A 1x1 kernel is a matrix product, the same multiply-adds. On CPU, a 4x4,
  stride-2, padding-1 convolution of an even-sized image takes its input
  gradient from `conv_4x4_stride_2`; other platforms keep XLA's.
  """
  kh, kw, i, o = kernel.shape
  if kh == kw == 1 and padding == ((0, 0), (0, 0)):
    return x[:, ::stride, ::stride] @ kernel.reshape(i, o)
  if (kh, kw, stride) == (4, 4, 2) and padding == _PAD_1 and (
      x.shape[1] % 2 == 0 and x.shape[2] % 2 == 0):
    return jax.lax.platform_dependent(x, kernel, cpu=conv_4x4_stride_2,
                                      default=lambda v, k: lax_conv2d(v, k, 2, _PAD_1))
  return lax_conv2d(x, kernel, stride, padding)


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
  four shifted windows of the padded gradient, stacked: one copy, where the
  transpose JAX derives from `_overlap_add` pads each window with zeros and
  adds the four.
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
  (`_overlap_add_adjoint`). Unlike lax.conv_transpose, whose gradients XLA's
  CPU backend computes as convolutions over a dilated input, this stays dense
  (`jaxvq bench --formulations` compares the two, and a 3x3 convolution plus
  depth-to-space; docs/performance.md). The backward pass being
  jax.custom_vjp's, the function has reverse-mode derivatives of any order but
  no forward-mode one (jax.jvp, jax.jacfwd).
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
  product and an overlap-add, where XLA's CPU backend would convolve the
  zero-dilated output gradient.
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
