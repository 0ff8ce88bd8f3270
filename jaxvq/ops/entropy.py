"""The entropy loss that keeps a codebook in use (MaskGIT's VQ; MAGVIT-v2's LFQ, Yu et al. 2023,
"Language Model Beats Diffusion", eq. 5).

With p(k | z_n) = softmax_k(logits_nk / temperature), the soft assignment of input n:

  loss = mean_n H(p(. | z_n)) - gamma * H(mean_n p(. | z_n))

The first term pulls each input towards one code (confident assignments), the
second spreads the batch over all codes (a used codebook); gamma, the
diversity weight, is 1 in both papers. `entropy` and `entropy_of_counts` also give the
entropy of the code usage, whose exp is the quantizers' perplexity (jaxvq/ops/vq.py).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp


def entropy(probs: jax.Array, axis: int = -1) -> jax.Array:
  """-sum p log p along `axis` (0 log 0 = 0), in nats."""
  return -jnp.sum(jnp.where(probs > 0, probs * jnp.log(jnp.where(probs > 0, probs, 1.0)), 0.0),
                  axis=axis)


def entropy_of_counts(counts: jax.Array, axis: int = -1) -> jax.Array:
  """The entropy of the distribution counts / sum(counts) along `axis`, in nats (0 when all
  counts are 0: the sum is floored at 1)."""
  probs = counts / jnp.maximum(jnp.sum(counts, axis=axis, keepdims=True), 1.0)
  return entropy(probs, axis=axis)


def entropy_loss(logits: jax.Array, temperature: float = 1.0,
                 diversity_weight: float = 1.0) -> jax.Array:
  """Mean per-input entropy minus `diversity_weight` x the entropy of the mean assignment.

  Args:
    logits: [N, K] affinities of N inputs to K codes (e.g. minus squared distances).
    temperature: the softmax temperature.
    diversity_weight: gamma.

  Returns:
    A scalar, in nats.
  """
  probs = jax.nn.softmax(logits.astype(jnp.float32) / temperature, axis=-1)      # [N, K]
  per_input = jnp.mean(entropy(probs))
  of_batch = entropy(jnp.mean(probs, axis=0))
  return per_input - diversity_weight * of_batch
