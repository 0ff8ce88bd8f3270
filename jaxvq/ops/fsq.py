"""Finite scalar quantization (Mentzer et al. 2023, "Finite Scalar Quantization: VQ-VAE Made
Simple"), as pure functions.

Each of d channels is bounded and rounded to one of L_i levels, with the
straight-through estimator for the rounding:

  bounded_i = tanh(z_i + shift_i) * h_i - offset_i,   h_i = (L_i - 1)(1 + eps) / 2
  z_q,i     = round_ste(bounded_i) / floor(L_i / 2)   in [-1, 1]

offset_i = 1/2 for even L_i (whose levels are then -L_i/2 .. L_i/2 - 1) and 0
for odd ones, shift_i = atanh(offset_i / h_i) so that z = 0 maps to 0's level.
The codes form an implicit grid of K = prod_i L_i points: no codebook, no
auxiliary loss. A code's index is its mixed-radix number,
sum_i level_i * prod_{j<i} L_j with level_i in [0, L_i).

Shapes: inputs [..., d] (d = len(levels)); indices [...].
"""
from __future__ import annotations

import math
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxvq.ops import vq

_EPS = 1e-3


def num_codes(levels: Sequence[int]) -> int:
  """K = prod L_i."""
  return math.prod(levels)


def _levels(levels: Sequence[int]) -> jax.Array:
  return jnp.asarray(levels, jnp.float32)


def _basis(levels: Sequence[int]) -> jax.Array:
  return jnp.asarray(np.cumprod([1] + list(levels[:-1])), jnp.int32)


def bound(z: jax.Array, levels: Sequence[int]) -> jax.Array:
  """Each channel squashed into the range its L_i levels cover: [..., d] -> [..., d]."""
  levels_f = _levels(levels)
  half = (levels_f - 1.0) * (1.0 + _EPS) / 2.0
  offset = jnp.where(jnp.asarray(levels) % 2 == 0, 0.5, 0.0)
  shift = jnp.arctanh(offset / half)
  return jnp.tanh(z + shift) * half - offset


def round_ste(x: jax.Array) -> jax.Array:
  """round(x), with the identity as its gradient."""
  return x + jax.lax.stop_gradient(jnp.round(x) - x)


def to_codes(z: jax.Array, levels: Sequence[int]) -> jax.Array:
  """z [..., d] -> the nearest code in [-1, 1]^d, gradient through the rounding's identity."""
  half_width = jnp.asarray([level // 2 for level in levels], jnp.float32)
  return round_ste(bound(z.astype(jnp.float32), levels)) / half_width


def quantize(z: jax.Array, levels: Sequence[int]) -> vq.Quantized:
  """Finite scalar quantization of z [..., d], d = len(levels).

  Args:
    z: [..., d] (e.g. [16, 7, 7, 3] for levels 8,8,8).
    levels: L_i per channel.

  Returns:
    A `Quantized` (jaxvq/ops/vq.py): `quantized` [..., d] the codes in [-1, 1] with the
    straight-through gradient, `indices` [...] int32 in [0, prod L_i), zero losses (FSQ has
    none), and the batch's perplexity and code usage.
  """
  codes = to_codes(z, levels)
  indices = codes_to_indices(codes, levels)
  counts = vq.code_counts(indices, num_codes(levels))
  zero = jnp.zeros((), jnp.float32)
  return vq.Quantized(quantized=codes, indices=indices, codebook_loss=zero, commitment_loss=zero,
                      loss=zero, perplexity=vq.perplexity_from_counts(counts),
                      usage=vq.usage_from_counts(counts))


def codes_to_indices(codes: jax.Array, levels: Sequence[int]) -> jax.Array:
  """Quantized codes [..., d] (values of `quantize`) -> their indices [...] int32 in [0, K)."""
  half_width = jnp.asarray([level // 2 for level in levels], jnp.float32)
  digits = jnp.round(codes * half_width + half_width).astype(jnp.int32)   # [..., d] in [0, L_i)
  return jnp.sum(digits * _basis(levels), axis=-1)


def indices_to_codes(indices: jax.Array, levels: Sequence[int]) -> jax.Array:
  """Indices [...] in [0, K) -> their codes [..., d] in [-1, 1]."""
  half_width = jnp.asarray([level // 2 for level in levels], jnp.float32)
  digits = (indices[..., None] // _basis(levels)) % jnp.asarray(levels, jnp.int32)
  return (digits.astype(jnp.float32) - half_width) / half_width
