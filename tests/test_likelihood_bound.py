"""The VQ-VAE as a likelihood of the 8-bit pixels, and its bound on the NLL in bits/dim."""
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats
from flax import nnx

from jaxvq import likelihood_bound
from jaxvq.registry import build_model
from jaxvq.tokens.runs import encode_codes
from jaxvq.train import train_and_evaluate

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _likelihood_vqvae(tiny):
  cfg = tiny("vqvae").model
  cfg.likelihood = "discretized_gaussian"
  return build_model(cfg, (8, 8, 1), data_variance=0.1, seed=0)


@pytest.mark.slow
def test_vqvae_loss_is_the_discretized_gaussian_nll_per_dimension(tiny):
  model = _likelihood_vqvae(tiny)
  x = jax.random.randint(jax.random.key(0), (4, 8, 8, 1), 0, 256) / 255.0
  key = jax.random.key(3)
  out = model(x, key)
  q = model.quantizer(model.encoder(x), key, False)
  mean = np.asarray(model.decoder(q.quantized) + 0.5, np.float64)
  sigma = float(np.exp(model.log_scale[...][0]))
  x = np.asarray(x, np.float64)
  upper = np.where(x > 254.5 / 255, np.inf, (x + 0.5 / 255 - mean) / sigma)
  lower = np.where(x < 0.5 / 255, -np.inf, (x - 0.5 / 255 - mean) / sigma)
  nll = -np.log(scipy.stats.norm.cdf(upper) - scipy.stats.norm.cdf(lower)).reshape(4, -1).sum(1)
  np.testing.assert_allclose(out.per_example["reconstruction_nll"], nll, rtol=1e-4)
  np.testing.assert_allclose(out.per_example["bits_per_dim"], nll / (64 * np.log(2)), rtol=1e-4)
  np.testing.assert_allclose(out.loss, np.mean(nll) / 64 + q.loss, rtol=1e-4)
  # The decoder's NLL given the codes alone is the same number.
  np.testing.assert_allclose(model.decoder_nll(jnp.asarray(x, jnp.float32), q.indices), nll,
                             rtol=1e-4)


def test_mse_vqvae_has_no_likelihood_terms(tiny):
  model = build_model(tiny("vqvae").model, (8, 8, 1), data_variance=0.1, seed=0)
  x = jax.random.uniform(jax.random.key(0), (2, 8, 8, 1))
  out = model(x, jax.random.key(1))
  assert not hasattr(model, "log_scale") and "bits_per_dim" not in out.per_example
  np.testing.assert_allclose(out.loss, jnp.mean(out.per_example["normalized_mse"])
                             + out.internals.loss, rtol=1e-6)


@pytest.mark.slow
def test_likelihood_gradient_reaches_the_encoder_through_the_straight_through_path(tiny):
  model = _likelihood_vqvae(tiny)
  x = jax.random.randint(jax.random.key(0), (4, 8, 8, 1), 0, 256) / 255.0

  def decoder_nll_only(model):   # no commitment loss: only the straight-through path is left
    return jnp.mean(model(x, jax.random.key(1)).per_example["reconstruction_nll"])

  grads = nnx.grad(decoder_nll_only)(model)
  for part in (grads.encoder, grads.log_scale):
    assert all(float(jnp.abs(g).max()) > 0 for g in jax.tree.leaves(part))


def test_bound_bits_per_dim_is_the_parts_in_bits_over_the_dimensions():
  prior, decoder = jnp.array([100.0, 50.0]), jnp.array([700.0, 900.0])
  np.testing.assert_allclose(likelihood_bound.bound_bits_per_dim(prior, decoder, 784, 2.0),
                             (np.array([802.0, 952.0]) / np.log(2)) / 784, rtol=1e-6)


@pytest.mark.slow
def test_bound_over_the_test_images_is_the_prior_s_and_the_decoder_s_evaluations(
    tiny_config, tmp_path):
  vqvae_dir, prior_dir = str(tmp_path / "vqvae"), str(tmp_path / "prior")
  tiny_config.model.likelihood = "discretized_gaussian"
  vq_final = train_and_evaluate(tiny_config, vqvae_dir)
  encode_codes(vqvae_dir)
  from configs import pixelcnn_fashion_mnist  # pylint: disable=g-import-not-at-top
  prior_config = pixelcnn_fashion_mnist.get_config()   # class-conditional
  prior_config.dataset = f"codes:{vqvae_dir}"
  prior_config.model.update(channels=8, num_layers=2, head_channels=16)
  prior_config.update(batch_size=16, num_train_steps=20, log_every_steps=10, eval_every_steps=20,
                      checkpoint_every_steps=20, num_eval_examples=400, eval_batch_size=200)
  prior_final = train_and_evaluate(prior_config, prior_dir)

  bound = likelihood_bound.nll_bound(prior_dir, num_examples=400, batch_size=150)
  assert bound["examples"] == 400 and bound["num_dims"] == 784
  np.testing.assert_allclose(bound["prior_bits_per_code"], prior_final["bits_per_code"],
                             rtol=1e-4)
  np.testing.assert_allclose(bound["prior_bits_per_dim"], prior_final["bits_per_image_dim"],
                             rtol=1e-4)
  np.testing.assert_allclose(bound["decoder_bits_per_dim"], vq_final["bits_per_dim"], rtol=1e-4)
  alone = likelihood_bound.prior_bits(prior_dir, num_examples=400, batch_size=150)
  assert alone["likelihood"] == "exact"
  np.testing.assert_allclose(alone["prior_bits_per_code"], prior_final["bits_per_code"],
                             rtol=1e-4)
  np.testing.assert_allclose(bound["label_bits_per_dim"], np.log2(10) / 784, rtol=1e-6)
  np.testing.assert_allclose(
      bound["bits_per_dim"],
      prior_final["bits_per_image_dim"] + vq_final["bits_per_dim"] + np.log2(10) / 784, rtol=1e-4)

  result = subprocess.run([sys.executable, "-m", "jaxvq", "bits", f"--workdir={prior_dir}",
                           "--num_examples=400"], cwd=REPO, capture_output=True, text=True)
  assert result.returncode == 0, result.stderr
  printed = json.loads(result.stdout.splitlines()[-1])   # batches of 500 there: rounding
  np.testing.assert_allclose(printed["bits_per_dim"], bound["bits_per_dim"], rtol=1e-5)


@pytest.mark.slow
def test_bound_refuses_a_vqvae_trained_with_the_mse(trained_prior):
  # The session's prior (tests/conftest.py), on the codes of the tiny VQ-VAE: likelihood='mse'.
  with pytest.raises(likelihood_bound.BoundError, match="likelihood='mse'"):
    likelihood_bound.nll_bound(trained_prior.workdir, num_examples=100)


@pytest.mark.parametrize("compute", [likelihood_bound.nll_bound, likelihood_bound.prior_bits])
def test_a_negative_number_of_examples_is_refused_before_anything_is_read(compute, tmp_path):
  with pytest.raises(likelihood_bound.BoundError, match="num_examples -3 is negative") as error:
    compute(str(tmp_path / "no_such_run"), num_examples=-3)
  assert "\n" not in str(error.value)
