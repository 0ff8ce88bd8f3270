import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxvq import bench
from jaxvq.nets import Upsample2x


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
