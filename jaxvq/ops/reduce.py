"""Reductions over every axis but the batch axis: [B, ...] -> [B]."""
import jax
import jax.numpy as jnp


def per_example_sum(x: jax.Array) -> jax.Array:
  return jnp.sum(x.reshape(x.shape[0], -1), axis=1)


def per_example_mean(x: jax.Array) -> jax.Array:
  return jnp.mean(x.reshape(x.shape[0], -1), axis=1)
