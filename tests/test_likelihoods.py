"""jaxvq/ops/likelihoods.py: the Gaussian KL, the reparameterized sample, the log-likelihoods,
the importance-weighted bound and the discretized Gaussian; and the VAE's losses built on them."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

from jaxvq.ops import likelihoods as gaussian
from jaxvq.registry import build_model


def test_analytic_kl_equals_monte_carlo_estimate():
  mean = jnp.array([[0.5, -1.0, 2.0]])
  logvar = jnp.array([[0.3, -0.7, 1.1]])
  z = gaussian.reparameterize(jax.random.key(0), jnp.tile(mean, (200000, 1)),
                              jnp.tile(logvar, (200000, 1)))
  zeros = jnp.zeros_like(z)
  mc = jnp.mean(gaussian.diagonal_gaussian_log_prob(z, jnp.tile(mean, (200000, 1)),
                                                    jnp.tile(logvar, (200000, 1)))
                - gaussian.diagonal_gaussian_log_prob(z, zeros, zeros))
  analytic = gaussian.kl_to_standard_normal(mean, logvar)[0]
  np.testing.assert_allclose(mc, analytic, rtol=0.01)


def test_reparameterized_sample_has_the_posterior_moments():
  mean, logvar = jnp.array([1.5, -2.0]), jnp.array([0.4, -1.2])
  z = gaussian.reparameterize(jax.random.key(1), jnp.broadcast_to(mean, (100000, 2)),
                              jnp.broadcast_to(logvar, (100000, 2)))
  np.testing.assert_allclose(jnp.mean(z, 0), mean, atol=0.01)
  np.testing.assert_allclose(jnp.std(z, 0), jnp.exp(0.5 * logvar), rtol=0.01)


def test_reparameterized_sample_gradient_flows_through_mean_and_scale():
  key = jax.random.key(2)
  mean, logvar = jnp.array([0.3, -0.4]), jnp.array([0.2, 0.5])
  eps = jax.random.normal(key, (2,))
  d_mean, d_logvar = jax.grad(lambda m, lv: jnp.sum(gaussian.reparameterize(key, m, lv)),
                              (0, 1))(mean, logvar)
  np.testing.assert_allclose(d_mean, [1.0, 1.0])
  np.testing.assert_allclose(d_logvar, 0.5 * jnp.exp(0.5 * logvar) * eps, rtol=1e-6)


def test_log_likelihoods_equal_numpy_formulas():
  rng = np.random.default_rng(0)
  x = (rng.random((3, 4, 4, 1)) > 0.5).astype(np.float32)
  logits = rng.normal(size=x.shape).astype(np.float32)
  p = 1 / (1 + np.exp(-logits))
  want = (x * np.log(p) + (1 - x) * np.log(1 - p)).reshape(3, -1).sum(1)
  np.testing.assert_allclose(gaussian.bernoulli_log_prob(x, logits), want, rtol=1e-5)
  mean, logvar = rng.normal(size=x.shape), rng.normal(size=x.shape)
  want = (-0.5 * (np.log(2 * np.pi) + logvar + (x - mean) ** 2 / np.exp(logvar))).reshape(3, -1).sum(1)
  np.testing.assert_allclose(gaussian.diagonal_gaussian_log_prob(x, mean, logvar), want, rtol=1e-5)


def test_importance_weighted_estimate_is_log_mean_exp():
  log_w = np.random.default_rng(0).normal(size=(7, 3)) * 5
  want = np.log(np.mean(np.exp(log_w), axis=0))
  np.testing.assert_allclose(gaussian.importance_weighted_log_likelihood(log_w), want, rtol=1e-5)


@pytest.mark.slow
def test_vae_importance_weighted_nll_tightens_the_elbo(tiny):
  cfg = tiny("vae").model
  cfg.likelihood, cfg.architecture = "bernoulli", "mlp"
  model = build_model(cfg, (8, 8, 1), data_variance=0.1, seed=0)
  x = (jax.random.uniform(jax.random.key(0), (6, 8, 8, 1)) > 0.5).astype(jnp.float32)
  keys = jax.vmap(jax.random.key)(jnp.arange(200))   # key(0) ... key(199), in one call
  elbo_nll = jnp.mean(jax.vmap(lambda k: model(x, k).per_example["neg_elbo"])(keys), 0)
  iwae_nll = model.importance_weighted_nll(x, jax.random.key(9), 500)
  assert np.all(np.asarray(iwae_nll) < np.asarray(elbo_nll))
  assert np.all(np.asarray(iwae_nll) > 0)
  # With one sample the estimate is -log p(x, z) + log q(z|x): on average the -ELBO.
  single = jax.vmap(lambda k: model.importance_weighted_nll(x, k, 1))(
      jax.random.split(jax.random.key(5), 2000))
  np.testing.assert_allclose(jnp.mean(single, 0), elbo_nll, rtol=0.01)


def test_vae_loss_is_reconstruction_nll_plus_kl(tiny):
  cfg = tiny("vae").model
  cfg.likelihood = "gaussian"
  model = build_model(cfg, (8, 8, 1), data_variance=0.1, seed=0)
  x = jax.random.randint(jax.random.key(0), (4, 8, 8, 1), 0, 256) / 255.0
  key = jax.random.key(3)
  out = model(x, key)
  mean, logvar = model.posterior(x)
  z = gaussian.reparameterize(key, mean, logvar)
  decoded = np.asarray(model.decoder(z) + 0.5, np.float64)
  sigma = float(np.exp(model.log_scale[...]))
  x = np.asarray(x, np.float64)
  upper = np.where(x > 254.5 / 255, np.inf, (x + 0.5 / 255 - decoded) / sigma)
  lower = np.where(x < 0.5 / 255, -np.inf, (x - 0.5 / 255 - decoded) / sigma)
  nll = -np.log(scipy.stats.norm.cdf(upper) - scipy.stats.norm.cdf(lower)).reshape(4, -1).sum(1)
  kl = gaussian.kl_to_standard_normal(mean, logvar)
  np.testing.assert_allclose(out.per_example["neg_elbo"], nll + kl, rtol=1e-4)
  np.testing.assert_allclose(out.loss, jnp.mean(nll + kl), rtol=1e-4)
  np.testing.assert_allclose(out.per_example["bits_per_dim"], (nll + kl) / (64 * np.log(2)), rtol=1e-4)


def test_discretized_gaussian_gives_the_256_levels_probabilities_that_sum_to_one():
  levels = jnp.arange(256.0)[None, :] / 255.0
  for mean, log_scale in [(0.3, -1.0), (0.0, -3.0), (0.9, -6.0), (0.5, 1.0)]:
    log_p = jax.vmap(lambda v: gaussian.discretized_gaussian_log_prob(
        v.reshape(1, 1), jnp.full((1, 1), mean), jnp.full((1, 1), log_scale)))(levels[0])
    np.testing.assert_allclose(jnp.sum(jnp.exp(log_p)), 1.0, rtol=1e-5)
