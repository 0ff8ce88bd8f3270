"""Drawing codes from a prior's logits, as pure functions: temperature, top-k and top-p
(nucleus) filtering, classifier-free guidance, and MaskGIT's mask schedule and parallel
decoding (Chang et al. 2022, "MaskGIT: Masked Generative Image Transformer", section 3.2).

Every function takes explicit arrays and keys and has fixed shapes, so that a sampler built
from them is one compiled loop.
"""
from __future__ import annotations

import math
from typing import Callable

import jax
import jax.numpy as jnp

_NEG_INF = -1e30


def filter_top_k(logits: jax.Array, k: int) -> jax.Array:
  """[..., K] logits with all but the k largest of each row set to -inf (k = 0: unchanged).

  Ties at the k-th value are all kept."""
  if not k or k >= logits.shape[-1]:
    return logits
  kth = jax.lax.top_k(logits, k)[0][..., -1:]                           # [..., 1]
  return jnp.where(logits < kth, _NEG_INF, logits)


def filter_top_p(logits: jax.Array, p: float) -> jax.Array:
  """[..., K] logits keeping the smallest set of codes whose probabilities sum to at least p
  (Holtzman et al. 2020, nucleus sampling); the rest -inf (p = 1: unchanged).

  The most likely code is always kept, so the set is never empty."""
  if p >= 1.0:
    return logits
  order = jnp.argsort(-logits, axis=-1)
  sorted_logits = jnp.take_along_axis(logits, order, axis=-1)
  probs = jax.nn.softmax(sorted_logits, axis=-1)
  before = jnp.cumsum(probs, axis=-1) - probs        # mass of the codes ranked above each one
  keep_sorted = before < p                           # the first always: 0 < p
  keep = jnp.zeros_like(keep_sorted).at[
      tuple(jnp.indices(order.shape)[:-1]) + (order,)].set(keep_sorted)
  return jnp.where(keep, logits, _NEG_INF)


def guided_logits(conditional: jax.Array, unconditional: jax.Array, scale: float) -> jax.Array:
  """Classifier-free guidance (Ho & Salimans 2022): l_u + s (l_c - l_u).

  s = 0 gives the unconditional logits, s = 1 the conditional ones, s > 1 pushes past them
  towards the class."""
  return unconditional + scale * (conditional - unconditional)


def sample_logits(key: jax.Array, logits: jax.Array, temperature: float = 1.0, top_k: int = 0,
                  top_p: float = 1.0) -> jax.Array:
  """Codes [...] drawn from [..., K] logits at `temperature`, after top-k then top-p."""
  logits = filter_top_p(filter_top_k(logits / temperature, top_k), top_p)
  return jax.random.categorical(key, logits).astype(jnp.int32)


# ----------------------------------------------------------------------------- MaskGIT

def cosine_mask_ratio(r: jax.Array) -> jax.Array:
  """MaskGIT's cosine schedule: the fraction of codes masked at r in [0, 1], cos(pi r / 2)
  (1 at r = 0: all masked; 0 at r = 1: none)."""
  return jnp.cos(0.5 * math.pi * r)


def masks_for_training(key: jax.Array, batch: int, num_positions: int) -> jax.Array:
  """[B, N] bool: which codes a training example masks. Each example draws r ~ U[0, 1) and
  masks ceil(cos(pi r / 2) N) of its N positions (at least 1), chosen uniformly."""
  ratio_key, order_key = jax.random.split(key)
  ratio = cosine_mask_ratio(jax.random.uniform(ratio_key, (batch,)))
  count = jnp.clip(jnp.ceil(ratio * num_positions), 1, num_positions)   # [B]
  scores = jax.random.uniform(order_key, (batch, num_positions))
  rank = jnp.argsort(jnp.argsort(scores, axis=-1), axis=-1)            # 0 = smallest score
  return rank < count[:, None]


def masked_count(step: jax.Array, num_steps: int, num_positions: int) -> jax.Array:
  """How many codes stay masked after decoding step `step` (0-based) of `num_steps`:
  floor(N cos(pi/2 (step + 1) / T)), 0 after the last step."""
  ratio = cosine_mask_ratio((step + 1.0) / num_steps)
  return jnp.where(step + 1 >= num_steps, 0,
                   jnp.floor(num_positions * ratio).astype(jnp.int32))


def decode_step(key: jax.Array, step: int | jax.Array, codes: jax.Array, logits: jax.Array,
                mask_token: int, num_steps: int, temperature: float = 1.0,
                choice_temperature: float = 4.5, top_k: int = 0,
                top_p: float = 1.0) -> tuple:
  """Step `step` (0-based) of `num_steps` of MaskGIT's parallel decoding.

  A code is drawn at each masked position of `codes` [B, N] from `logits` [B, N, K] (at
  `temperature`, after top-k then top-p); its confidence is the model's log p of the drawn
  code (the logits as given: before the temperature and the filters, as in MaskGIT's
  decoder, so that top-k or top-p cannot flatten the ranking; top_k = 1 would make every
  confidence 0) plus Gumbel noise scaled by choice_temperature * (1 - (step + 1) / T) (the
  paper's annealed choice temperature). The `masked_count(step)` least confident draws stay
  masked, clipped to [1, masked - 1] before the last step as MaskGIT's decoder does (with
  T <= N every step unmasks at least one); the last step unmasks all. Positions already
  unmasked are kept as they are.

  Returns:
    (the new codes [B, N] int32, which positions this step unmasked [B, N] bool).
  """
  draw_key, gumbel_key = jax.random.split(key)
  masked = codes == mask_token                                           # [B, N]
  drawn = sample_logits(draw_key, logits, temperature, top_k, top_p)
  drawn_log_p = jnp.take_along_axis(jax.nn.log_softmax(logits, axis=-1), drawn[..., None],
                                    axis=-1)[..., 0]
  anneal = choice_temperature * (1.0 - (step + 1.0) / num_steps)
  confidence = drawn_log_p + anneal * jax.random.gumbel(gumbel_key, drawn_log_p.shape)
  confidence = jnp.where(masked, confidence, jnp.inf)                    # known: never masked
  still_masked = jnp.sum(masked, axis=-1, keepdims=True)                 # [B, 1]
  keep_masked = jnp.maximum(1, jnp.minimum(masked_count(step, num_steps, codes.shape[-1]),
                                           still_masked - 1))
  keep_masked = jnp.where(step + 1 >= num_steps, 0, keep_masked)
  rank = jnp.argsort(jnp.argsort(confidence, axis=-1), axis=-1)         # 0 = least confident
  newly = masked & (rank >= keep_masked)
  return jnp.where(newly, drawn, codes), newly


def parallel_decode(key: jax.Array, logits_fn: Callable, batch: int, num_positions: int,
                    mask_token: int, num_steps: int, temperature: float = 1.0,
                    choice_temperature: float = 4.5, top_k: int = 0,
                    top_p: float = 1.0) -> tuple:
  """MaskGIT's iterative parallel decoding, in one `lax.fori_loop`.

  All N codes start masked (`mask_token`); step t of T calls
  `logits_fn(codes [B, N]) -> [B, N, K]` and then `decode_step` with the key
  fold_in(key, t). A position once unmasked never changes.

  Returns:
    (codes [B, N] int32, the step at which each position was unmasked [B, N] int32).
  """
  codes = jnp.full((batch, num_positions), mask_token, jnp.int32)
  unmasked_at = jnp.full((batch, num_positions), -1, jnp.int32)

  def step(t, carry):
    codes, unmasked_at = carry
    codes, newly = decode_step(jax.random.fold_in(key, t), t, codes, logits_fn(codes),
                               mask_token, num_steps, temperature, choice_temperature, top_k,
                               top_p)
    return codes, jnp.where(newly, t, unmasked_at)

  return jax.lax.fori_loop(0, num_steps, step, (codes, unmasked_at))
