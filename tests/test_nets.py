import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxvq import bench
from jaxvq.nets import Upsample2x, conv_4x4_stride_2, transposed_conv_4x4_stride_2


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


def test_upsample_equals_a_4x4_stride_2_transposed_convolution():
  layer = Upsample2x(3, 5, rngs=nnx.Rngs(0))
  x = np.random.default_rng(0).normal(size=(2, 4, 6, 3)).astype(np.float32)
  want = _numpy_transposed_conv(x, np.asarray(layer.kernel[...])) + np.asarray(layer.bias[...])
  np.testing.assert_allclose(np.asarray(layer(jnp.asarray(x))), want, rtol=1e-5, atol=1e-5)


def test_the_subpixel_formulation_bench_compares_with_is_the_same_transposed_convolution():
  rng = np.random.default_rng(1)
  x = rng.normal(size=(2, 3, 5, 4)).astype(np.float32)
  kernel = rng.normal(size=(4, 4, 4, 2)).astype(np.float32)
  np.testing.assert_allclose(np.asarray(bench.subpixel_transposed_conv(jnp.asarray(x), kernel)),
                             _numpy_transposed_conv(x, kernel), rtol=1e-4, atol=1e-4)


def test_upsample_gradients_equal_those_of_another_formulation():
  """The hand-written backward pass against JAX's derivative of the subpixel formulation."""
  rng = np.random.default_rng(2)
  x = jnp.asarray(rng.normal(size=(2, 3, 5, 4)), jnp.float32)
  kernel = jnp.asarray(rng.normal(size=(4, 4, 4, 3)), jnp.float32)
  out_grad = jnp.asarray(rng.normal(size=(2, 6, 10, 3)), jnp.float32)
  got = jax.vjp(transposed_conv_4x4_stride_2, x, kernel)[1](out_grad)
  want = jax.vjp(bench.subpixel_transposed_conv, x, kernel)[1](out_grad)
  for g, w in zip(got, want):
    assert g.shape == w.shape and g.dtype == w.dtype
    np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-4, atol=1e-4)
  # In bfloat16 the gradients come back in the inputs' dtype.
  bf16 = jax.vjp(transposed_conv_4x4_stride_2, x.astype(jnp.bfloat16),
                 kernel.astype(jnp.bfloat16))[1](out_grad.astype(jnp.bfloat16))
  assert [g.dtype for g in bf16] == [jnp.bfloat16, jnp.bfloat16]
  np.testing.assert_allclose(np.asarray(bf16[0], np.float32), np.asarray(want[0]), rtol=0.05, atol=0.1)


def test_strided_conv_gradients_equal_xla_derivative():
  """conv_4x4_stride_2's input gradient (a transposed convolution) against XLA's own derivative."""
  rng = np.random.default_rng(3)
  x = jnp.asarray(rng.normal(size=(2, 6, 8, 3)), jnp.float32)
  kernel = jnp.asarray(rng.normal(size=(4, 4, 3, 5)), jnp.float32)
  out_grad = jnp.asarray(rng.normal(size=(2, 3, 4, 5)), jnp.float32)
  lax_conv = lambda v, k: jax.lax.conv_general_dilated(
      v, k, (2, 2), ((1, 1), (1, 1)), dimension_numbers=("NHWC", "HWIO", "NHWC"))
  np.testing.assert_allclose(np.asarray(conv_4x4_stride_2(x, kernel)),
                             np.asarray(lax_conv(x, kernel)), rtol=1e-6, atol=1e-6)
  got = jax.vjp(conv_4x4_stride_2, x, kernel)[1](out_grad)
  want = jax.vjp(lax_conv, x, kernel)[1](out_grad)
  for g, w in zip(got, want):
    assert g.shape == w.shape and g.dtype == w.dtype
    np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-4, atol=1e-4)
