"""The math of the VAE: reparameterization, KL, likelihoods, importance weights.

All functions are per example: they sum over every non-batch axis and
return [B] arrays in nats.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp

LOG_2PI = math.log(2.0 * math.pi)


def _sum_per_example(x: jax.Array) -> jax.Array:
  return jnp.sum(x.reshape(x.shape[0], -1), axis=1)


def reparameterize(key: jax.Array, mean: jax.Array, logvar: jax.Array) -> jax.Array:
  """z = mean + sigma * eps with eps ~ N(0, I) drawn from `key`."""
  eps = jax.random.normal(key, mean.shape, mean.dtype)
  return mean + jnp.exp(0.5 * logvar) * eps


def kl_to_standard_normal(mean: jax.Array, logvar: jax.Array) -> jax.Array:
  """KL(N(mean, exp(logvar)) || N(0, I)), analytic: [B, Z] -> [B]."""
  return _sum_per_example(0.5 * (jnp.exp(logvar) + mean**2 - 1.0 - logvar))


def diagonal_gaussian_log_prob(x: jax.Array, mean: jax.Array, logvar: jax.Array) -> jax.Array:
  """log N(x; mean, diag(exp(logvar))): [B, ...] -> [B]."""
  return _sum_per_example(-0.5 * (LOG_2PI + logvar + (x - mean) ** 2 * jnp.exp(-logvar)))


def bernoulli_log_prob(x: jax.Array, logits: jax.Array) -> jax.Array:
  """log Bernoulli(x; sigmoid(logits)) for x in {0, 1}: [B, ...] -> [B]."""
  return _sum_per_example(x * jax.nn.log_sigmoid(logits) + (1.0 - x) * jax.nn.log_sigmoid(-logits))


def importance_weighted_log_likelihood(log_weights: jax.Array) -> jax.Array:
  """log (1/k) sum_i w_i from log w_i = log p(x, z_i) - log q(z_i | x): [k, B] -> [B]."""
  return jax.nn.logsumexp(log_weights, axis=0) - jnp.log(log_weights.shape[0])


def nats_to_bits_per_dim(nats: jax.Array, num_dims: int) -> jax.Array:
  return nats / (num_dims * math.log(2.0))
