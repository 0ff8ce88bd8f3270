"""Residual vector quantization (SoundStream, Zeghidour et al. 2021): Q stages, each with its own
codebook kept alive as the single one is (EMA, k-means, dead-code restarts, per stage),
quantizing what the stages before it left (jaxvq/ops/residual_vq.py); optional quantizer
dropout, each training example using its first n ~ U{1..Q} stages."""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from jaxvq.schema import Field
from jaxvq.models.quantizers.base import Quantizer, QuantizerOutput
from jaxvq.models.quantizers.vq import CODEBOOK_FIELDS, Codebook
from jaxvq.ops import codebook as codebook_lib
from jaxvq.ops import residual_vq, vq

RESIDUAL_FIELDS = {
    "name": Field("residual_vq", "the quantizer", choices=("residual_vq",)),
    "depth": Field(4, "Q, the stages; an index is Q codes", minimum=1),
    **CODEBOOK_FIELDS,
    "quantizer_dropout": Field(False, "train each example with its first n ~ U{1..Q} stages"),
}


class ResidualVectorQuantizer(Quantizer):
  """z_e [B, h, w, D] -> Q codes per position [B, h, w, Q] -> z_q = their sum [B, h, w, D]."""

  CONFIG = RESIDUAL_FIELDS

  def __init__(self, q, dim: int, *, rngs: nnx.Rngs):
    self.depth = q.depth
    self.index_shape = (q.depth,)
    self.codebook = Codebook(q, dim, stages=q.depth, rngs=rngs)   # vectors [Q, K, D]
    self.num_codes = q.num_codes
    self.commitment_cost = q.commitment_cost
    self.codebook_cost = 0.0 if self.codebook.ema else q.codebook_cost
    self.quantizer_dropout = q.quantizer_dropout
    self.kmeans_init_batches = q.kmeans_init_batches
    self.search_chunk_size = q.search_chunk_size

  def __call__(self, z_e, key, training=False) -> QuantizerOutput:
    active = None
    if training and self.quantizer_dropout:
      stages = jax.random.randint(key, z_e.shape[:1], 1, self.depth + 1)          # [B]
      active = (jnp.arange(self.depth) < stages[:, None]).astype(jnp.float32)     # [B, Q]
      active = jnp.broadcast_to(active[:, None, None, :], z_e.shape[:-1] + (self.depth,))
    r = residual_vq.residual_quantize(
        z_e, self.codebook.vectors[...], commitment_cost=self.commitment_cost,
        codebook_cost=self.codebook_cost, active=active,
        search_chunk_size=self.search_chunk_size)
    on = jnp.ones(r.indices.shape, jnp.float32) if active is None else active
    codes = jax.vmap(lambda i, c: vq.lookup(i, c), in_axes=(-1, 0), out_axes=-2)(
        r.indices, self.codebook.vectors[...])                                     # [B,h,w,Q,D]
    distance = jnp.sum(jnp.mean((r.stage_inputs - codes) ** 2, axis=-1) * on, axis=-1)
    distance = jax.lax.stop_gradient(jnp.mean(distance.reshape(distance.shape[0], -1), axis=1))
    return QuantizerOutput(
        quantized=r.quantized, indices=r.indices, loss=r.loss,
        per_example={"loss": (self.codebook_cost + self.commitment_cost) * distance,
                     "codebook_loss": distance, "commitment_loss": distance},
        batch_metrics={"perplexity": r.perplexity, "codebook_usage": r.usage},
        latents=r.stage_inputs, active=active)

  def encode(self, z_e):
    return residual_vq.residual_quantize(z_e, self.codebook.vectors[...],
                                         search_chunk_size=self.search_chunk_size).indices

  def decode(self, indices):
    return residual_vq.decode_indices(indices, self.codebook.vectors[...])

  def code_counts(self, indices, weights=None):
    return jnp.stack([vq.code_counts(indices[..., q], self.num_codes, weights)
                      for q in range(self.depth)])

  @property
  def num_initialization_batches(self) -> int:
    return self.kmeans_init_batches

  def initialize_from_data(self, z_e, key, num_batches):
    """k-means of each stage's inputs in turn: stage q's of the residuals stage q - 1 left."""
    residual = z_e.reshape(-1, z_e.shape[-1]).astype(jnp.float32)
    vectors, sizes = [], []
    for q, stage_key in enumerate(jax.random.split(key, self.depth)):
      centers, counts = codebook_lib.kmeans(stage_key, residual, self.num_codes,
                                            self.codebook.kmeans_iterations)
      vectors.append(centers)
      sizes.append(counts / num_batches)
      residual = residual - vq.lookup(vq.nearest_code(residual, centers), centers)
    del q
    vectors, sizes = jnp.stack(vectors), jnp.stack(sizes)
    self.codebook.vectors[...] = vectors
    if self.codebook.ema:
      self.codebook.cluster_size[...] = jnp.maximum(sizes, 1.0)
      self.codebook.embed_sum[...] = vectors * self.codebook.cluster_size[...][..., None]

  def update_after_step(self, out, key, step):
    restarted = 0
    for q, stage_key in enumerate(jax.random.split(key, self.depth)):
      flat = out.latents[..., q, :].reshape(-1, out.latents.shape[-1])            # [N, D]
      indices = out.indices[..., q].reshape(-1)
      if out.active is not None:   # a stage an example did not use: no assignment (index K)
        indices = jnp.where(out.active[..., q].reshape(-1) > 0, indices, self.num_codes)
      restarted = restarted + self.codebook.update(flat, indices, stage_key, step, stage=q)
    return {"num_codes_restarted": restarted} if self.codebook.restart_every_steps else {}
