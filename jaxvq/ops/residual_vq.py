"""Residual vector quantization (Zeghidour et al. 2021, "SoundStream", section 3.3, algorithm 1),
as a pure function.

Q stages, each with its own codebook, quantize what the stages before it left:

  r_0 = z_e;   k_q = argmin_j ||r_{q-1} - C_q[j]||^2;   r_q = r_{q-1} - C_q[k_q]
  z_q = sum_q C_q[k_q]

The decoder reads z_e + sg(z_q - z_e) (straight-through). Each stage has the
VQ-VAE's two losses on its own input, sg(r_{q-1}) against C_q[k_q] (moves the
codebook) and r_{q-1} against sg(C_q[k_q]) (moves the encoder), summed over
the stages; r_{q-1} carries gradient to z_e only (the earlier stages' codes are
held constant in it). With quantizer dropout a training example uses only its
first n stages, n drawn uniformly from 1..Q (SoundStream): `active` masks the
others out of z_q and the losses.

Shapes: inputs [..., D], codebooks [Q, K, D]; indices [..., Q].
"""
from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp
from flax import struct

from jaxvq.ops import vq


@struct.dataclass
class ResidualQuantized:
  quantized: jax.Array        # [..., D] value z_q, gradient identity to z_e
  indices: jax.Array          # [..., Q] int32, each stage's code
  stage_inputs: jax.Array     # [..., Q, D] r_{q-1}, what each stage quantized (no gradient)
  codebook_loss: jax.Array    # sum over stages of mean (C_q[k_q] - sg(r_{q-1}))^2
  commitment_loss: jax.Array  # sum over stages of mean (r_{q-1} - sg(C_q[k_q]))^2
  loss: jax.Array             # codebook_cost * codebook + commitment_cost * commitment
  perplexity: jax.Array       # the stages' mean of exp(entropy of their code usage)
  usage: jax.Array            # the stages' mean fraction of their K codes in use


def residual_quantize(inputs: jax.Array, codebooks: jax.Array, *, commitment_cost: float = 0.25,
                      codebook_cost: float = 1.0,
                      active: Optional[jax.Array] = None,
                      search_chunk_size: int = 0) -> ResidualQuantized:
  """Quantizes `inputs` [..., D] through the Q codebooks [Q, K, D] in turn.

  Args:
    inputs: z_e, [..., D].
    codebooks: [Q, K, D], stage q's codes in codebooks[q].
    commitment_cost: beta.
    codebook_cost: alpha.
    active: optional [..., Q] 0/1 mask of the stages each input uses (quantizer dropout);
      None: all of them.
    search_chunk_size: codes per chunk of each stage's nearest-code search
      (jaxvq/ops/vq.py's `nearest_codes`; 0: automatic, -1: never chunk).

  Returns:
    A ResidualQuantized: quantized [..., D], indices [..., Q] int32, each stage's input
    [..., Q, D], the losses summed over the stages, and the stages' mean perplexity and
    code usage.
  """
  depth = codebooks.shape[0]
  x = inputs.astype(jnp.float32)
  if active is None:
    active = jnp.ones(x.shape[:-1] + (depth,), jnp.float32)
  active = active.astype(jnp.float32)
  residual = x
  total = jnp.zeros_like(x)
  indices, stage_inputs = [], []
  codebook_loss = commitment_loss = 0.0
  count = jnp.maximum(jnp.sum(active, axis=tuple(range(active.ndim - 1))), 1.0)   # [Q]
  for q in range(depth):
    on = active[..., q:q + 1]                                             # [..., 1]
    index = vq.nearest_code(jax.lax.stop_gradient(residual), codebooks[q], search_chunk_size)
    code = vq.lookup(index, codebooks[q]).astype(jnp.float32)             # [..., D]
    per_input = lambda a, b: jnp.sum(jnp.mean((a - b) ** 2, axis=-1) * on[..., 0]) / count[q]
    codebook_loss += per_input(code, jax.lax.stop_gradient(residual))
    commitment_loss += per_input(residual, jax.lax.stop_gradient(code))
    indices.append(index)
    stage_inputs.append(jax.lax.stop_gradient(residual))
    total = total + on * code
    residual = residual - on * jax.lax.stop_gradient(code)
  indices = jnp.stack(indices, axis=-1)
  # An input's unused stage counts as no assignment (index K, which the counts drop).
  counts = [vq.code_counts(jnp.where(active[..., q] > 0, indices[..., q], codebooks.shape[1]),
                           codebooks.shape[1]) for q in range(depth)]
  return ResidualQuantized(
      quantized=(x + jax.lax.stop_gradient(total - x)).astype(inputs.dtype),
      indices=indices,
      stage_inputs=jnp.stack(stage_inputs, axis=-2),
      codebook_loss=codebook_loss,
      commitment_loss=commitment_loss,
      loss=codebook_cost * codebook_loss + commitment_cost * commitment_loss,
      perplexity=jnp.mean(jnp.stack([vq.perplexity_from_counts(c) for c in counts])),
      usage=jnp.mean(jnp.stack([vq.usage_from_counts(c) for c in counts])))


def decode_indices(indices: jax.Array, codebooks: jax.Array) -> jax.Array:
  """Indices [..., Q] -> z_q [..., D], the sum of each stage's code."""
  return sum(vq.lookup(indices[..., q], codebooks[q]) for q in range(codebooks.shape[0]))
