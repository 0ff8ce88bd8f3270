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

The search for the nearest code holds the N x K distances at once, or, when
they are many (`search_chunk`), goes through the codebook in chunks of codes
with a running minimum, so that its memory is N x chunk: the same indices
(ties to the first), the same losses and gradients.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from jaxvq.ops.entropy import entropy_loss, entropy_of_counts


@struct.dataclass
class Quantized:
  """Everything `quantize` computes, for the model and for the user."""
  quantized: jax.Array        # [..., D] value z_q, gradient to z_e (identity, or the rotation)
  indices: jax.Array          # [...] int32, the chosen codes
  codebook_loss: jax.Array    # mean (z_q - sg(z_e))^2: moves the codebook
  commitment_loss: jax.Array  # mean (z_e - sg(z_q))^2: moves the encoder
  loss: jax.Array             # codebook_cost * codebook + commitment_cost * commitment
                              #   (+ entropy_loss_weight * entropy_loss)
  perplexity: jax.Array       # exp(entropy of code usage over the batch)
  usage: jax.Array = None     # fraction of the K codes the batch uses
  entropy_loss: jax.Array = None  # jaxvq/ops/entropy.py over the codes' softmax(-d^2 / T)


def squared_distances(flat_inputs: jax.Array, codebook: jax.Array) -> jax.Array:
  """||x||^2 - 2 x.c + ||c||^2 for every pair: [N, D], [K, D] -> [N, K]."""
  flat_inputs = flat_inputs.astype(jnp.float32)
  codebook = codebook.astype(jnp.float32)
  return (jnp.sum(flat_inputs**2, axis=1, keepdims=True)
          - 2.0 * flat_inputs @ codebook.T
          + jnp.sum(codebook**2, axis=1)[None, :])


def _min_and_first_argmin(values: jax.Array, positions: jax.Array, missing: int):
  """The minimum over the last axis, and the smallest of `positions` [K] where it is met
  (`missing` where it is met nowhere, as for a minimum of NaN): [..., K] -> [...], [...]."""
  smallest = jnp.min(values, axis=-1, keepdims=True)
  index = jnp.where(values == smallest, positions, missing)
  return smallest[..., 0], jnp.min(index, axis=-1)


def first_argmin(values: jax.Array) -> jax.Array:
  """jnp.argmin over the last axis (the first index of the minimum; NaN rows aside, see
  below), computed as two plain reductions: the minimum, then the smallest index holding
  it, which XLA's CPU backend vectorises where argmin's single (value, index) reduction
  is not (docs/performance.md). A row holding NaN has no index equal to its minimum and
  gets the last one."""
  size = values.shape[-1]
  return _min_and_first_argmin(values, jnp.arange(size, dtype=jnp.int32), size - 1)[1]


# Automatic chunking (search_chunk_size 0) starts above this many N x K distances
# (2^24 float32: 64 MiB), with chunks of about AUTO_CHUNK_ELEMENTS distances.
AUTO_CHUNK_THRESHOLD = 2 ** 24
AUTO_CHUNK_ELEMENTS = 2 ** 22
# Fewer codes per chunk make matrix products too thin to run at full speed.
MIN_AUTO_CHUNK = 128


def search_chunk(num_inputs: int, num_codes: int, chunk_size: int = 0) -> int:
  """Codes per chunk of the nearest-code search, 0 for the whole codebook at once.

  Args:
    num_inputs: N, the vectors searched together (under jit, the whole batch's).
    num_codes: K.
    chunk_size: 0: automatic, chunks of about AUTO_CHUNK_ELEMENTS / N codes once N x K
      exceeds AUTO_CHUNK_THRESHOLD; -1: never chunk; > 0: that many codes per chunk.

  Returns:
    The chunk's size in codes, or 0 where one chunk would hold every code.
  """
  if chunk_size < 0:
    return 0
  if chunk_size == 0:
    if num_inputs * num_codes <= AUTO_CHUNK_THRESHOLD:
      return 0
    chunk_size = max(AUTO_CHUNK_ELEMENTS // max(num_inputs, 1), MIN_AUTO_CHUNK)
  return 0 if chunk_size >= num_codes else chunk_size


def nearest_codes(flat_inputs: jax.Array, codebook: jax.Array,
                  chunk_size: int = 0) -> tuple[jax.Array, jax.Array]:
  """The nearest code of each vector and its squared distance, the N x K distances held at
  once or searched in chunks of codes (`search_chunk`).

  In chunks, each chunk's minimum and the first index of it are merged into a running
  pair, replacing it when strictly smaller, so ties go to the lowest index as with
  `first_argmin`; each distance is computed as `squared_distances` computes it, so the
  indices are the unchunked ones, unless the backend's matrix product rounds a chunk's
  products otherwise than the whole one's and two codes are within that rounding of each
  other. Exact ties, as duplicated codes, go to the first. The search has no gradient (its
  inputs are held constant).

  Args:
    flat_inputs: [N, D] vectors.
    codebook: [K, D] codes.
    chunk_size: codes per chunk; 0: automatic, -1: never (see `search_chunk`).

  Returns:
    (indices [N] int32, squared distances to those codes [N] float32). A vector whose
    distances are all NaN gets index K - 1, as with `first_argmin`.
  """
  flat = jax.lax.stop_gradient(flat_inputs).astype(jnp.float32)
  codes = jax.lax.stop_gradient(codebook).astype(jnp.float32)
  (n, dim), num_codes = flat.shape, codes.shape[0]
  chunk = search_chunk(n, num_codes, chunk_size)
  if not chunk:
    smallest, indices = _min_and_first_argmin(
        squared_distances(flat, codes), jnp.arange(num_codes, dtype=jnp.int32), num_codes - 1)
    return indices, smallest
  num_chunks = -(-num_codes // chunk)
  padded = jnp.pad(codes, ((0, num_chunks * chunk - num_codes), (0, 0)))   # [K', D]
  input_norms = jnp.sum(flat**2, axis=1, keepdims=True)                   # [N, 1]
  code_norms = jnp.sum(padded**2, axis=1)                                 # [K']
  # Padding codes are infinitely far, so never nearest.
  code_norms = jnp.where(jnp.arange(code_norms.shape[0]) < num_codes, code_norms, jnp.inf)

  def merge(carry, chunk_codes):
    best, index = carry                                                   # [N], [N]
    vectors, norms, offset = chunk_codes                                  # [C, D], [C], []
    distances = input_norms - 2.0 * flat @ vectors.T + norms[None, :]    # [N, C]
    positions = offset + jnp.arange(chunk, dtype=jnp.int32)
    smallest, local = _min_and_first_argmin(distances, positions, num_codes)
    # A strictly smaller minimum replaces the pair; an equal one keeps the lower index, so
    # index K ("minimum met nowhere") gives way to a real one, as in the whole search.
    index = jnp.where(smallest < best, local,
                      jnp.where(smallest == best, jnp.minimum(index, local), index))
    return (jnp.where(smallest < best, smallest, best), index), None

  init = (jnp.full((n,), jnp.inf, jnp.float32), jnp.full((n,), num_codes, jnp.int32))
  (best, index), _ = jax.lax.scan(
      merge, init, (padded.reshape(num_chunks, chunk, dim),
                    code_norms.reshape(num_chunks, chunk),
                    jnp.arange(num_chunks, dtype=jnp.int32) * chunk))
  return jnp.minimum(index, num_codes - 1), best


def nearest_code(inputs: jax.Array, codebook: jax.Array, chunk_size: int = 0) -> jax.Array:
  """Index of the nearest code for each vector: [..., D] -> [...] int32 (`nearest_codes`;
  `chunk_size` 0: automatic, -1: never chunk, > 0: codes per chunk)."""
  flat = inputs.reshape(-1, inputs.shape[-1])                       # [N, D]
  indices, _ = nearest_codes(flat, codebook, chunk_size)            # [N]
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
  return jnp.exp(entropy_of_counts(counts))


def usage_from_counts(counts: jax.Array) -> jax.Array:
  """Fraction of the K codes used at least once."""
  return jnp.mean((counts > 0).astype(jnp.float32))


def quantize(inputs: jax.Array, codebook: jax.Array, *,
             commitment_cost: float = 0.25,
             codebook_cost: float = 1.0,
             rotation_trick: bool = False,
             entropy_loss_weight: float = 0.0,
             entropy_temperature: float = 0.01,
             diversity_weight: float = 1.0,
             search_chunk_size: int = 0) -> Quantized:
  """Nearest-code quantization with the straight-through estimator (or the rotation trick).

  loss = alpha * ||z_q - sg(z_e)||^2 + beta * ||z_e - sg(z_q)||^2 (means over every
  element), and the decoder reads z_e + sg(z_q - z_e). With `rotation_trick` it reads
  `rotate_to(z_e, z_q)` instead: the same values, the decoder's gradient rotated onto z_e
  (Fifty et al. 2024). With `entropy_loss_weight` > 0 the loss adds that weight times the
  entropy loss of the soft assignments softmax(-||z_e - c_k||^2 / entropy_temperature)
  (MaskGIT's; jaxvq/ops/entropy.py), which spreads the inputs over the codebook.

  The nearest codes are searched in chunks of codes when the N x K distances are many
  (`nearest_codes`); the entropy loss needs all of them, so with it the search holds them
  at once.

  Args:
    inputs: encoder outputs z_e, [..., D] (e.g. [16, 8, 8, 64]).
    codebook: the K codes, [K, D] (e.g. [512, 64]).
    commitment_cost: beta, the weight of the commitment loss.
    codebook_cost: alpha, the weight of the codebook loss.
    rotation_trick: carry the gradient through the rotation, not the identity.
    entropy_loss_weight: the entropy loss's weight (0: none).
    entropy_temperature: its softmax temperature.
    diversity_weight: gamma, the weight of its batch-entropy term.
    search_chunk_size: codes per chunk of the search (0: automatic, -1: never chunk); must
      be 0 or -1 with the entropy loss.

  Returns:
    A `Quantized`: `quantized` [..., D] (e.g. [16, 8, 8, 64]), `indices` [...] int32
    (e.g. [16, 8, 8]), the losses, their weighted sum, and the batch's perplexity and
    code usage.
  """
  num_codes = codebook.shape[0]
  flat = inputs.reshape(-1, inputs.shape[-1])                        # [N, D]
  if entropy_loss_weight:
    if search_chunk_size > 0:
      raise ValueError("the entropy loss needs every code's distance: a chunked search "
                       "(search_chunk_size > 0) cannot go with entropy_loss_weight > 0")
    distances = squared_distances(flat, codebook)                    # [N, K]
    indices = first_argmin(distances)                                # [N]
  else:
    indices, _ = nearest_codes(flat, codebook, search_chunk_size)    # [N]
  indices = indices.reshape(inputs.shape[:-1])                       # [...]
  z_q = lookup(indices, codebook).astype(inputs.dtype)               # [..., D]
  codebook_loss = jnp.mean((z_q - jax.lax.stop_gradient(inputs)) ** 2)
  commitment_loss = jnp.mean((inputs - jax.lax.stop_gradient(z_q)) ** 2)
  loss = codebook_cost * codebook_loss + commitment_cost * commitment_loss
  entropy = None
  if entropy_loss_weight:
    entropy = entropy_loss(-distances, entropy_temperature, diversity_weight)
    loss = loss + entropy_loss_weight * entropy
  if rotation_trick:
    quantized = rotate_to(inputs, z_q)
  else:
    quantized = inputs + jax.lax.stop_gradient(z_q - inputs)
  counts = code_counts(indices, num_codes)
  return Quantized(
      quantized=quantized,
      indices=indices,
      codebook_loss=codebook_loss,
      commitment_loss=commitment_loss,
      loss=loss,
      perplexity=perplexity_from_counts(counts),
      usage=usage_from_counts(counts),
      entropy_loss=entropy,
  )


def l2_normalize(x: jax.Array) -> jax.Array:
  """x / ||x|| along the last axis: [..., D] -> [..., D] (a zero vector stays zero).

  The squared norm is floored at 1e-24, the norm at 1e-12 (PyTorch's F.normalize default,
  and the floor `rotate_to` puts under |e|), so every vector of norm 1e-12 or more comes out
  of unit length. Both users need that: the cosine codebook promises unit codes and inputs,
  and `rotate_to` returns z_q's values only if z_e / |z_e| is a unit vector (with
  TensorFlow's floor of 1e-12 on the squared norm, which the cosine codebook used, an input
  of norm 1e-8 misses z_q by about |z_q|). The two floors give the same bits wherever the
  squared norm exceeds 1e-12, so the only change is that cosine codes and inputs shorter
  than 1e-6 now come out of unit length too; plain VQ (the demo's) normalizes nothing.
  """
  return x * jax.lax.rsqrt(jnp.maximum(jnp.sum(x * x, axis=-1, keepdims=True), 1e-24))


def rotate_to(inputs: jax.Array, targets: jax.Array) -> jax.Array:
  """The rotation trick (Fifty et al. 2024, "Restructuring Vector Quantization with the
  Rotation Trick", eq. 4 and section 4.2): targets' values, with the gradient carried to
  `inputs` through the rotation and rescaling that map each input onto its target.

  For e = inputs[n] and q = targets[n], with R the rotation taking e/|e| to q/|q| in the
  plane they span and lambda = |q| / |e|, both held constant (stop_gradient):

    out = lambda R e,   R e = e - 2 (e.w) w + 2 (e.u) q/|q|,
    u = e/|e|,   w = (u + q/|q|) / |u + q/|q||

  so out == q (up to rounding), and d out / d e = lambda R: the decoder's gradient is
  rotated and scaled on its way to the encoder, where the straight-through estimator
  copies it unchanged.

  Args:
    inputs: z_e, [..., d].
    targets: z_q, [..., d] (no gradient flows to them).

  Returns:
    [..., d], the values of `targets`.
  """
  e = inputs.astype(jnp.float32)
  q = jax.lax.stop_gradient(targets.astype(jnp.float32))
  norm_e = jnp.sqrt(jnp.sum(e * e, axis=-1, keepdims=True))
  norm_q = jnp.sqrt(jnp.sum(q * q, axis=-1, keepdims=True))
  u = jax.lax.stop_gradient(l2_normalize(e))
  q_hat = l2_normalize(q)
  w = jax.lax.stop_gradient(l2_normalize(u + q_hat))
  rotated = (e - 2.0 * jnp.sum(e * w, axis=-1, keepdims=True) * w
             + 2.0 * jnp.sum(e * u, axis=-1, keepdims=True) * q_hat)
  scale = jax.lax.stop_gradient(norm_q / jnp.maximum(norm_e, 1e-12))
  return (rotated * scale).astype(inputs.dtype)
