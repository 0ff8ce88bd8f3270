"""Vector quantization as pure functions (van den Oord et al. 2017, "Neural Discrete
Representation Learning").

The quantizer snaps each input vector z_e to its nearest codebook vector
z_q = c_k, k = argmin_j ||z_e - c_j||^2. argmin has no gradient, so the
straight-through estimator hands the decoder z_e + stop_gradient(z_q - z_e):
its value is z_q, its gradient w.r.t. z_e is the identity.

Shapes: any leading dimensions are allowed. An encoder output of shape
[16, 8, 8, 64] with a codebook [512, 64] is flattened to [1024, 64], compared
with all 512 codes, and the results are reshaped back: `quantized` is
[16, 8, 8, 64] and `indices` is [16, 8, 8].
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class Quantized:
  """Everything `quantize` computes, for the model and for the user."""
  quantized: jax.Array        # [..., D] value z_q, gradient identity to z_e
  indices: jax.Array          # [...] int32, the chosen codes
  codebook_loss: jax.Array    # mean (z_q - sg(z_e))^2: moves the codebook
  commitment_loss: jax.Array  # mean (z_e - sg(z_q))^2: moves the encoder
  loss: jax.Array             # codebook_cost * codebook + commitment_cost * commitment
  perplexity: jax.Array       # exp(entropy of code usage over the batch)


def squared_distances(flat_inputs: jax.Array, codebook: jax.Array) -> jax.Array:
  """||x||^2 - 2 x.c + ||c||^2 for every pair: [N, D], [K, D] -> [N, K]."""
  flat_inputs = flat_inputs.astype(jnp.float32)
  codebook = codebook.astype(jnp.float32)
  return (jnp.sum(flat_inputs**2, axis=1, keepdims=True)
          - 2.0 * flat_inputs @ codebook.T
          + jnp.sum(codebook**2, axis=1)[None, :])


def first_argmin(values: jax.Array) -> jax.Array:
  """jnp.argmin over the last axis (the first index of the minimum; NaN rows aside, see
  below), computed as two plain reductions: the minimum, then the smallest index holding
  it, which XLA's CPU backend vectorises where argmin's single (value, index) reduction
  is not (docs/performance.md). A row holding NaN has no index equal to its minimum and
  gets the last one."""
  size = values.shape[-1]
  smallest = jnp.min(values, axis=-1, keepdims=True)
  index = jnp.where(values == smallest, jnp.arange(size, dtype=jnp.int32), size - 1)
  return jnp.min(index, axis=-1)


def nearest_code(inputs: jax.Array, codebook: jax.Array) -> jax.Array:
  """Index of the nearest code for each vector: [..., D] -> [...] int32."""
  flat = inputs.reshape(-1, inputs.shape[-1])                       # [N, D]
  indices = first_argmin(squared_distances(flat, codebook))         # [N]
  return indices.reshape(inputs.shape[:-1])


def lookup(indices: jax.Array, codebook: jax.Array) -> jax.Array:
  """Codebook vectors for integer indices: [...] -> [..., D]."""
  return jnp.take(codebook, indices, axis=0)


def code_counts(indices: jax.Array, num_codes: int,
                weights: jax.Array | None = None) -> jax.Array:
  """How often each of the K codes is used: indices [...] (weights broadcast to them) -> [K]
  float32."""
  flat = indices.reshape(-1)
  if weights is None:
    weights = jnp.ones(flat.shape, jnp.float32)
  else:
    weights = jnp.broadcast_to(weights.reshape(weights.shape + (1,) * (
        indices.ndim - weights.ndim)), indices.shape).reshape(-1)
  # Summed in float32 (exact up to 2^24): over several devices, XLA then merges their
  # all-reduce with the gradients' at the end of the step, instead of one mid-step.
  return jnp.bincount(flat, weights=weights.astype(jnp.float32), length=num_codes)


def perplexity_from_counts(counts: jax.Array) -> jax.Array:
  """exp(entropy) of the empirical code distribution: [K] counts -> a scalar, K when all are
  used equally, 1 when one code takes everything."""
  probs = counts / jnp.maximum(jnp.sum(counts), 1.0)
  entropy = -jnp.sum(jnp.where(probs > 0, probs * jnp.log(jnp.where(probs > 0, probs, 1.0)), 0.0))
  return jnp.exp(entropy)


def usage_from_counts(counts: jax.Array) -> jax.Array:
  """Fraction of the K codes used at least once."""
  return jnp.mean((counts > 0).astype(jnp.float32))


def quantize(inputs: jax.Array, codebook: jax.Array, *,
             commitment_cost: float = 0.25,
             codebook_cost: float = 1.0) -> Quantized:
  """Nearest-code quantization with the straight-through estimator.

  loss = alpha * ||z_q - sg(z_e)||^2 + beta * ||z_e - sg(z_q)||^2 (means over every
  element), and the decoder reads z_e + sg(z_q - z_e).

  Args:
    inputs: encoder outputs z_e, [..., D] (e.g. [16, 8, 8, 64]).
    codebook: the K codes, [K, D] (e.g. [512, 64]).
    commitment_cost: beta, the weight of the commitment loss.
    codebook_cost: alpha, the weight of the codebook loss.

  Returns:
    A `Quantized`: `quantized` [..., D] (e.g. [16, 8, 8, 64]), `indices` [...] int32
    (e.g. [16, 8, 8]), the two losses, their weighted sum and the batch's perplexity.
  """
  num_codes = codebook.shape[0]
  indices = nearest_code(inputs, codebook)                 # [...]
  z_q = lookup(indices, codebook).astype(inputs.dtype)     # [..., D]
  codebook_loss = jnp.mean((z_q - jax.lax.stop_gradient(inputs)) ** 2)
  commitment_loss = jnp.mean((inputs - jax.lax.stop_gradient(z_q)) ** 2)
  return Quantized(
      quantized=inputs + jax.lax.stop_gradient(z_q - inputs),
      indices=indices,
      codebook_loss=codebook_loss,
      commitment_loss=commitment_loss,
      loss=codebook_cost * codebook_loss + commitment_cost * commitment_loss,
      perplexity=perplexity_from_counts(code_counts(indices, num_codes)),
  )
