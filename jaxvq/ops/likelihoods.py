"""The VAE's math: reparameterization, KL, likelihoods, importance weights (Kingma & Welling
2014; Burda et al. 2016).

All functions are per example: they sum over every non-batch axis and
return [B] arrays in nats.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from jaxvq.ops.reduce import per_example_sum

LOG_2PI = math.log(2.0 * math.pi)


def reparameterize(key: jax.Array, mean: jax.Array, logvar: jax.Array) -> jax.Array:
  """z = mean + sigma * eps with eps ~ N(0, I) drawn from `key`."""
  eps = jax.random.normal(key, mean.shape, mean.dtype)
  return mean + jnp.exp(0.5 * logvar) * eps


def kl_to_standard_normal(mean: jax.Array, logvar: jax.Array) -> jax.Array:
  """KL(N(mean, exp(logvar)) || N(0, I)), analytic: [B, Z] -> [B]."""
  return per_example_sum(0.5 * (jnp.exp(logvar) + mean**2 - 1.0 - logvar))


def diagonal_gaussian_log_prob(x: jax.Array, mean: jax.Array, logvar: jax.Array) -> jax.Array:
  """log N(x; mean, diag(exp(logvar))): [B, ...] -> [B]."""
  return per_example_sum(-0.5 * (LOG_2PI + logvar + (x - mean) ** 2 * jnp.exp(-logvar)))


def discretized_gaussian_log_prob(x: jax.Array, mean: jax.Array, log_scale: jax.Array,
                                  num_levels: int = 256) -> jax.Array:
  """log P(x) of pixels on the grid k / (L - 1), k = 0..L-1, under N(mean, scale^2): [B, ...] -> [B].

  Each level receives the Gaussian's mass over its bin (half a step either
  side; the end bins extend to -inf and +inf), so the probabilities of the L
  levels sum to one and -ELBO bounds the discrete NLL (as PixelCNN++ does with
  a logistic). Where the bin is so narrow against the scale that float32
  cannot tell Phi(upper) from Phi(lower), the density times the bin width
  stands in (exact to first order there).
  """
  half_step = 0.5 / (num_levels - 1)
  inv_scale = jnp.exp(-log_scale)
  upper = jnp.where(x > 1.0 - half_step, jnp.inf, (x - mean + half_step) * inv_scale)
  lower = jnp.where(x < half_step, -jnp.inf, (x - mean - half_step) * inv_scale)
  # Phi(upper) - Phi(lower) = Phi(-lower) - Phi(-upper): use the smaller tail.
  flip = lower > 0
  a, b = jnp.where(flip, -upper, lower), jnp.where(flip, -lower, upper)
  log_b = jax.scipy.special.log_ndtr(b)
  log_ratio = jax.scipy.special.log_ndtr(a) - log_b                     # log Phi(a) / Phi(b)
  narrow = log_ratio > -1e-3
  mass = log_b + jnp.log1p(-jnp.exp(jnp.minimum(log_ratio, -1e-3)))
  z = (x - mean) * inv_scale
  density = -0.5 * (LOG_2PI + z**2) - log_scale + jnp.log(2.0 * half_step)
  return per_example_sum(jnp.where(narrow, density, mass))


def bernoulli_log_prob(x: jax.Array, logits: jax.Array) -> jax.Array:
  """log Bernoulli(x; sigmoid(logits)) for x in {0, 1}: [B, ...] -> [B]."""
  return per_example_sum(x * jax.nn.log_sigmoid(logits) + (1.0 - x) * jax.nn.log_sigmoid(-logits))


def importance_weighted_log_likelihood(log_weights: jax.Array) -> jax.Array:
  """log (1/k) sum_i w_i from log w_i = log p(x, z_i) - log q(z_i | x): [k, B] -> [B]."""
  return jax.nn.logsumexp(log_weights, axis=0) - jnp.log(log_weights.shape[0])


def nats_to_bits_per_dim(nats: jax.Array, num_dims: int) -> jax.Array:
  return nats / (num_dims * math.log(2.0))
