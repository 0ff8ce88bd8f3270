"""Keeping a codebook healthy: EMA updates, k-means initialisation, dead-code restart.

All pure functions of explicit state. Shapes: K codes of size D, N input
vectors (the flattened encoder outputs of a batch).

EMA codebook (VQ-VAE paper, appendix A.1; Sonnet's VectorQuantizerEMA):
  N_k <- gamma N_k + (1 - gamma) n_k          n_k = #inputs assigned to code k
  m_k <- gamma m_k + (1 - gamma) sum z_e      over the inputs assigned to k
  c_k  = m_k / N~_k,   N~_k = (N_k + eps) / (sum_j N_j + K eps) * sum_j N_j
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxvq.ops import vq


def assignment_statistics(flat_inputs: jax.Array, indices: jax.Array, num_codes: int):
  """n [K] (counts) and s [K, D] (sums of the assigned inputs) for [N, D], [N]."""
  flat_inputs = flat_inputs.astype(jnp.float32)
  counts = jax.ops.segment_sum(jnp.ones(indices.shape, jnp.float32), indices, num_codes)
  sums = jax.ops.segment_sum(flat_inputs, indices, num_codes)
  return counts, sums


def ema_update(cluster_size: jax.Array, embed_sum: jax.Array, flat_inputs: jax.Array,
               indices: jax.Array, *, decay: float):
  """One EMA step of (N [K], m [K, D]) with the batch's assignments."""
  counts, sums = assignment_statistics(flat_inputs, indices, cluster_size.shape[0])
  return (decay * cluster_size + (1.0 - decay) * counts,
          decay * embed_sum + (1.0 - decay) * sums)


def ema_codebook(cluster_size: jax.Array, embed_sum: jax.Array, epsilon: float) -> jax.Array:
  """c = m / N~ with Laplace smoothing of the cluster sizes: [K, D]."""
  total = jnp.sum(cluster_size)
  smoothed = (cluster_size + epsilon) / (total + cluster_size.shape[0] * epsilon) * total
  return embed_sum / jnp.maximum(smoothed, 1e-12)[:, None]


def ema_state_for(codebook: jax.Array, counts: jax.Array | None = None):
  """EMA statistics (N, m) that reproduce `codebook`: N = max(counts, 1), m = c N."""
  cluster_size = jnp.ones(codebook.shape[:1], jnp.float32)
  if counts is not None:
    cluster_size = jnp.maximum(counts.astype(jnp.float32), 1.0)
  return cluster_size, codebook * cluster_size[:, None]


def kmeans(key: jax.Array, points: jax.Array, num_clusters: int, num_iterations: int = 10):
  """k-means++ seeding, then Lloyd iterations: [N, D] -> centers [K, D], counts [K].

  A cluster that ends up empty keeps its previous center.
  """
  points = points.astype(jnp.float32)
  n = points.shape[0]
  seed_key, pick_key = jax.random.split(key)
  first = points[jax.random.randint(seed_key, (), 0, n)]
  centers = jnp.zeros((num_clusters, points.shape[1]), jnp.float32).at[0].set(first)
  closest = jnp.sum((points - first) ** 2, axis=1)                           # [N]

  def seed(k, carry):
    centers, closest = carry
    # The next center is a point drawn with probability proportional to D(x)^2.
    logits = jnp.log(jnp.maximum(closest, 1e-30))
    chosen = points[jax.random.categorical(jax.random.fold_in(pick_key, k), logits)]
    closest = jnp.minimum(closest, jnp.sum((points - chosen) ** 2, axis=1))
    return centers.at[k].set(chosen), closest

  centers, _ = jax.lax.fori_loop(1, num_clusters, seed, (centers, closest))

  def lloyd(_, centers):
    counts, sums = assignment_statistics(
        points, vq.nearest_code(points, centers), num_clusters)
    return jnp.where(counts[:, None] > 0, sums / jnp.maximum(counts, 1.0)[:, None], centers)

  centers = jax.lax.fori_loop(0, num_iterations, lloyd, centers)
  counts, _ = assignment_statistics(
      points, vq.nearest_code(points, centers), num_clusters)
  return centers, counts


def quantization_error(points: jax.Array, codebook: jax.Array) -> jax.Array:
  """Mean squared distance of each point to its nearest code."""
  return jnp.mean(vq.nearest_codes(points, codebook)[1])


def usage_update(usage: jax.Array, indices: jax.Array, *, decay: float) -> jax.Array:
  """EMA of how many inputs of a batch each code receives: [K]."""
  return decay * usage + (1.0 - decay) * vq.code_counts(indices, usage.shape[0])


def dead_code_candidates(key: jax.Array, usage: jax.Array, flat_inputs: jax.Array,
                         threshold: float):
  """Which codes are dead (EMA usage < threshold), and an input vector to re-seed each.

  Returns (dead [K] bool, replacements [K, D]): replacement k is an input drawn
  uniformly from the batch.
  """
  dead = usage < threshold
  choice = jax.random.randint(key, usage.shape, 0, flat_inputs.shape[0])
  return dead, flat_inputs[choice].astype(jnp.float32)
