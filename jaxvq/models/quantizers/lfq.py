"""Lookup-free quantization (MAGVIT-v2, Yu et al. 2023): z_e projected to d channels, each
quantized to its sign (jaxvq/ops/lfq.py), projected back; K = 2^d implicit codes kept in use
by the entropy loss (jaxvq/ops/entropy.py), plus a commitment loss."""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from jaxvq.schema import Field
from jaxvq.models.quantizers.base import Quantizer, QuantizerOutput
from jaxvq.ops import lfq, vq
from jaxvq.ops.reduce import per_example_mean

LFQ_FIELDS = {
    "name": Field("lfq", "the quantizer", choices=("lfq",)),
    "dim": Field(9, "d, the sign channels: K = 2^d codes (the entropy loss sees all of them, "
                 "so d is at most 14)", minimum=1, maximum=14),
    "commitment_cost": Field(0.25, "beta, the weight of ||z - sg(sign(z))||^2", minimum=0.0),
    "entropy_loss_weight": Field(0.1, "weight of the entropy loss", minimum=0.0),
    "entropy_temperature": Field(0.01, "its softmax temperature over 2 z.c", above=0.0),
    "diversity_weight": Field(1.0, "gamma, its batch-entropy term's weight", minimum=0.0),
}


class LookupFreeQuantizer(Quantizer):
  """z_e [B, h, w, D] -> d signs -> an index in [0, 2^d) read as bits [B, h, w]."""

  CONFIG = LFQ_FIELDS

  def __init__(self, q, dim: int, *, rngs: nnx.Rngs):
    self.dim = q.dim
    self.project_in = nnx.Linear(dim, q.dim, rngs=rngs)
    self.project_out = nnx.Linear(q.dim, dim, rngs=rngs)
    self.num_codes = 2 ** q.dim
    self.commitment_cost = q.commitment_cost
    self.entropy_loss_weight = q.entropy_loss_weight
    self.entropy_temperature, self.diversity_weight = q.entropy_temperature, q.diversity_weight

  def __call__(self, z_e, key, training=False) -> QuantizerOutput:
    del key, training
    z = self.project_in(z_e).astype(jnp.float32)                   # [B, h, w, d]
    q = lfq.quantize(z, commitment_cost=self.commitment_cost,
                     entropy_loss_weight=self.entropy_loss_weight,
                     entropy_temperature=self.entropy_temperature,
                     diversity_weight=self.diversity_weight)
    commitment = jax.lax.stop_gradient(per_example_mean((z - q.quantized) ** 2))   # [B]
    return QuantizerOutput(
        quantized=self.project_out(q.quantized), indices=q.indices, loss=q.loss,
        per_example={"loss": self.commitment_cost * commitment, "commitment_loss": commitment},
        batch_metrics={"perplexity": q.perplexity, "codebook_usage": q.usage,
                       "entropy_loss": q.entropy_loss},
        latents=jax.lax.stop_gradient(z))

  def encode(self, z_e):
    return lfq.codes_to_indices(lfq.to_codes(self.project_in(z_e)))

  def decode(self, indices):
    return self.project_out(lfq.indices_to_codes(indices, self.dim))

  def code_counts(self, indices, weights=None):
    return vq.code_counts(indices, self.num_codes, weights)[None]
