import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxvq.bench import formulations
from jaxvq.nets.layers import Conv, Upsample2x
from jaxvq.ops.conv_kernels import conv_4x4_stride_2, transposed_conv_4x4_stride_2


def _numpy_transposed_conv(x, kernel):
  """PyTorch's ConvTranspose2d(4, stride=2, padding=1): out[2i + k - 1] += in[i] * W[k]."""
  b, h, w, _ = x.shape
  out = np.zeros((b, 2 * h + 2, 2 * w + 2, kernel.shape[3]))
  for i in range(h):
    for j in range(w):
      for ky in range(4):
        for kx in range(4):
          out[:, 2 * i + ky, 2 * j + kx] += x[:, i, j] @ kernel[ky, kx]
  return out[:, 1:-1, 1:-1]


def _lax_strided_conv(v, k):
  return jax.lax.conv_general_dilated(v, k, (2, 2), ((1, 1), (1, 1)),
                                      dimension_numbers=("NHWC", "HWIO", "NHWC"))


def _assert_gradients_match(fn, reference, x, kernel, out_grad):
  """fn's vjp equals reference's, in float32; in bfloat16 it returns the inputs' dtype."""
  want = jax.vjp(reference, x, kernel)[1](out_grad)
  for g, w in zip(jax.vjp(fn, x, kernel)[1](out_grad), want):
    assert g.shape == w.shape and g.dtype == w.dtype
    np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-4, atol=1e-4)
  bf16 = jax.vjp(fn, x.astype(jnp.bfloat16),
                 kernel.astype(jnp.bfloat16))[1](out_grad.astype(jnp.bfloat16))
  for g, w in zip(bf16, want):
    assert g.dtype == jnp.bfloat16
    np.testing.assert_allclose(np.asarray(g, np.float32), np.asarray(w), rtol=0.05, atol=0.15)


def test_upsample_equals_a_4x4_stride_2_transposed_convolution():
  layer = Upsample2x(3, 5, rngs=nnx.Rngs(0))
  x = np.random.default_rng(0).normal(size=(2, 4, 6, 3)).astype(np.float32)
  want = _numpy_transposed_conv(x, np.asarray(layer.kernel[...])) + np.asarray(layer.bias[...])
  np.testing.assert_allclose(np.asarray(layer(jnp.asarray(x))), want, rtol=1e-5, atol=1e-5)


def test_the_subpixel_formulation_bench_compares_with_is_the_same_transposed_convolution():
  rng = np.random.default_rng(1)
  x = rng.normal(size=(2, 3, 5, 4)).astype(np.float32)
  kernel = rng.normal(size=(4, 4, 4, 2)).astype(np.float32)
  np.testing.assert_allclose(np.asarray(formulations.subpixel_transposed_conv(jnp.asarray(x), kernel)),
                             _numpy_transposed_conv(x, kernel), rtol=1e-4, atol=1e-4)


def test_upsample_gradients_equal_those_of_another_formulation():
  """The hand-written backward pass against JAX's derivative of the subpixel formulation."""
  rng = np.random.default_rng(2)
  x = jnp.asarray(rng.normal(size=(2, 3, 5, 4)), jnp.float32)
  kernel = jnp.asarray(rng.normal(size=(4, 4, 4, 3)), jnp.float32)
  out_grad = jnp.asarray(rng.normal(size=(2, 6, 10, 3)), jnp.float32)
  _assert_gradients_match(transposed_conv_4x4_stride_2, formulations.subpixel_transposed_conv,
                          x, kernel, out_grad)


def test_strided_conv_gradients_equal_xla_derivative():
  """conv_4x4_stride_2's input gradient (a transposed convolution) against XLA's own derivative."""
  rng = np.random.default_rng(3)
  x = jnp.asarray(rng.normal(size=(2, 6, 8, 3)), jnp.float32)
  kernel = jnp.asarray(rng.normal(size=(4, 4, 3, 5)), jnp.float32)
  out_grad = jnp.asarray(rng.normal(size=(2, 3, 4, 5)), jnp.float32)
  np.testing.assert_allclose(np.asarray(conv_4x4_stride_2(x, kernel)),
                             np.asarray(_lax_strided_conv(x, kernel)), rtol=1e-6, atol=1e-6)
  _assert_gradients_match(conv_4x4_stride_2, _lax_strided_conv, x, kernel, out_grad)


def test_conv_layers_take_the_strided_input_gradient_only_for_even_images():
  """Conv(4, stride 2, padding 1) on an even image: its compiled input gradient is no
  convolution (XLA's is one, over the dilated output gradient); on an odd image it is
  XLA's; both equal XLA's derivative."""
  layer = Conv(3, 5, 4, stride=2, padding=1, rngs=nnx.Rngs(0))
  kernel = layer.kernel[...]
  for size, xla_gradient in ((8, False), (7, True)):
    x = jnp.asarray(np.random.default_rng(size).normal(size=(2, size, size, 3)), jnp.float32)
    input_grad = jax.jit(jax.grad(lambda v: jnp.sum(jnp.sin(layer(v)))))
    hlo = input_grad.lower(x).compile().as_text()
    assert bool(re.search(rf"f32\[2,{size},{size},3\]\S* convolution\(", hlo)) == xla_gradient
    want = jax.grad(lambda v: jnp.sum(jnp.sin(_lax_strided_conv(v, kernel) + layer.bias[...])))(x)
    np.testing.assert_allclose(np.asarray(input_grad(x)), np.asarray(want), rtol=1e-4, atol=1e-5)
  with pytest.raises(ValueError, match="even"):
    conv_4x4_stride_2(jnp.zeros((1, 7, 8, 3)), kernel)
