"""Lookup-free quantization (Yu et al. 2023, "Language Model Beats Diffusion: Tokenizer is Key
to Visual Generation", MAGVIT-v2, section 3.1), as pure functions.

Each of d channels is quantized to its sign, z_q,i = +1 if z_i > 0 else -1,
with the straight-through estimator: an implicit codebook of K = 2^d codes,
{-1, 1}^d, and no lookup. A code's index is its bits, read with the first
channel as the most significant: index = sum_i [z_q,i > 0] 2^(d-1-i).

The entropy loss (jaxvq/ops/entropy.py) is computed over the K codes with
logits 2 z . c (minus the squared distance up to terms constant in c):
it keeps every code in use.

Shapes: inputs [..., d]; indices [...].
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxvq.ops import vq
from jaxvq.ops.entropy import entropy_loss


def to_codes(z: jax.Array) -> jax.Array:
  """z [..., d] -> sign codes in {-1, 1}^d, gradient the identity (straight-through)."""
  z = z.astype(jnp.float32)
  q = jnp.where(z > 0, 1.0, -1.0)
  return z + jax.lax.stop_gradient(q - z)


def _powers(dim: int) -> jax.Array:
  return 2 ** jnp.arange(dim - 1, -1, -1, dtype=jnp.int32)


def codes_to_indices(codes: jax.Array) -> jax.Array:
  """Sign codes [..., d] -> indices [...] int32 in [0, 2^d)."""
  return jnp.sum((codes > 0).astype(jnp.int32) * _powers(codes.shape[-1]), axis=-1)


def indices_to_codes(indices: jax.Array, dim: int) -> jax.Array:
  """Indices [...] -> sign codes [..., d]."""
  bits = (indices[..., None] // _powers(dim)) % 2
  return bits.astype(jnp.float32) * 2.0 - 1.0


def all_codes(dim: int) -> jax.Array:
  """The implicit codebook, [2^d, d], row k the code of index k."""
  return indices_to_codes(jnp.arange(2 ** dim, dtype=jnp.int32), dim)


def code_logits(z: jax.Array) -> jax.Array:
  """Affinities of each input to each code, 2 z . c: [..., d] -> [N, 2^d] (inputs flattened)."""
  flat = z.reshape(-1, z.shape[-1]).astype(jnp.float32)
  return 2.0 * flat @ all_codes(z.shape[-1]).T


def quantize(z: jax.Array, *, commitment_cost: float = 0.25, entropy_loss_weight: float = 0.1,
             entropy_temperature: float = 0.01, diversity_weight: float = 1.0) -> vq.Quantized:
  """Lookup-free quantization of z [..., d] with MAGVIT-v2's losses.

  loss = commitment_cost * mean ||z - sg(sign z)||^2 + entropy_loss_weight * entropy_loss,
  the entropy loss over the soft assignments softmax(2 z.c / entropy_temperature) to the
  2^d codes (jaxvq/ops/entropy.py).

  Args:
    z: [..., d] (e.g. [16, 7, 7, 9] for K = 512).
    commitment_cost: beta.
    entropy_loss_weight: the entropy loss's weight.
    entropy_temperature: its softmax temperature.
    diversity_weight: gamma, the weight of its batch-entropy term.

  Returns:
    A `Quantized` (jaxvq/ops/vq.py): `quantized` [..., d] the signs with the
    straight-through gradient, `indices` [...] int32 in [0, 2^d), the commitment and entropy
    losses, their weighted sum, and the batch's perplexity and code usage.
  """
  z = z.astype(jnp.float32)
  codes = to_codes(z)
  indices = codes_to_indices(codes)
  commitment = jnp.mean((z - jax.lax.stop_gradient(codes)) ** 2)
  entropy = entropy_loss(code_logits(z), entropy_temperature, diversity_weight)
  counts = vq.code_counts(indices, 2 ** z.shape[-1])
  return vq.Quantized(
      quantized=codes, indices=indices, codebook_loss=jnp.zeros((), jnp.float32),
      commitment_loss=commitment, loss=commitment_cost * commitment + entropy_loss_weight * entropy,
      perplexity=vq.perplexity_from_counts(counts), usage=vq.usage_from_counts(counts),
      entropy_loss=entropy)
