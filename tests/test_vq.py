"""jaxvq/ops/vq.py, the nearest-code quantizer: against a NumPy nearest neighbour, its
straight-through gradient, which loss moves what, perplexity, usage counts, first argmin."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvq.ops import vq as quantizer


def _numpy_nearest(inputs, codebook):
  flat = inputs.reshape(-1, inputs.shape[-1]).astype(np.float64)
  d = ((flat[:, None, :] - codebook[None, :, :].astype(np.float64)) ** 2).sum(-1)
  return d.argmin(1).reshape(inputs.shape[:-1])


@pytest.fixture
def data():
  rng = np.random.default_rng(0)
  return (rng.normal(size=(4, 5, 6, 8)).astype(np.float32),
          rng.normal(size=(32, 8)).astype(np.float32))


def test_quantize_equals_numpy_nearest_neighbour(data):
  inputs, codebook = data
  q = quantizer.quantize(jnp.asarray(inputs), jnp.asarray(codebook), commitment_cost=0.25)
  want = _numpy_nearest(inputs, codebook)
  np.testing.assert_array_equal(np.asarray(q.indices), want)
  assert q.indices.shape == (4, 5, 6) and q.quantized.shape == inputs.shape
  np.testing.assert_allclose(np.asarray(q.quantized), codebook[want], rtol=1e-6, atol=1e-6)
  mse = np.mean((codebook[want] - inputs) ** 2)
  np.testing.assert_allclose(q.codebook_loss, mse, rtol=1e-5)
  np.testing.assert_allclose(q.commitment_loss, mse, rtol=1e-5)
  np.testing.assert_allclose(q.loss, 1.25 * mse, rtol=1e-5)
  p = np.bincount(want.ravel(), minlength=32) / want.size
  p = p[p > 0]
  np.testing.assert_allclose(q.perplexity, np.exp(-(p * np.log(p)).sum()), rtol=1e-5)


def test_straight_through_gradient_is_identity(data):
  inputs, codebook = data
  grad = jax.grad(lambda x: jnp.sum(quantizer.quantize(x, codebook).quantized))(jnp.asarray(inputs))
  np.testing.assert_array_equal(np.asarray(grad), np.ones_like(inputs))


def test_codebook_loss_moves_only_the_codebook_and_commitment_only_the_inputs(data):
  inputs, codebook = jnp.asarray(data[0]), jnp.asarray(data[1])
  term = lambda name: jax.grad(lambda x, c: getattr(quantizer.quantize(x, c), name), (0, 1))(
      inputs, codebook)
  d_inputs, d_codebook = term("codebook_loss")
  assert not np.any(np.asarray(d_inputs))
  assert np.any(np.asarray(d_codebook))
  d_inputs, d_codebook = term("commitment_loss")
  assert not np.any(np.asarray(d_codebook))
  z_q = np.asarray(codebook)[_numpy_nearest(data[0], data[1])]
  np.testing.assert_allclose(np.asarray(d_inputs), 2 * (data[0] - z_q) / data[0].size,
                             rtol=1e-4, atol=1e-9)


def test_loss_weights_codebook_and_commitment_terms(data):
  inputs, codebook = data
  q = quantizer.quantize(inputs, codebook, commitment_cost=0.7, codebook_cost=0.3)
  np.testing.assert_allclose(q.loss, 0.3 * q.codebook_loss + 0.7 * q.commitment_loss, rtol=1e-6)


def test_perplexity_is_number_of_equally_used_codes():
  codebook = jnp.eye(4)
  np.testing.assert_allclose(quantizer.quantize(jnp.eye(4), codebook).perplexity, 4.0, rtol=1e-6)
  np.testing.assert_allclose(quantizer.quantize(jnp.tile(codebook[:1], (5, 1)), codebook).perplexity,
                             1.0, rtol=1e-6)


def test_usage_counts_with_mask():
  counts = quantizer.code_counts(jnp.array([[0, 1], [2, 2]]), 5, weights=jnp.array([1.0, 0.0]))
  np.testing.assert_array_equal(np.asarray(counts), [1, 1, 0, 0, 0])
  assert float(quantizer.usage_from_counts(counts)) == pytest.approx(0.4)


def test_first_argmin_is_argmin_with_ties_to_the_first_index():
  values = np.random.default_rng(0).integers(0, 4, size=(200, 7)).astype(np.float32)  # many ties
  np.testing.assert_array_equal(np.asarray(quantizer.first_argmin(jnp.asarray(values))),
                                values.argmin(1))
