"""Finite scalar quantization (Mentzer et al. 2023): z_e projected to d = len(levels) channels,
each bounded and rounded to its L_i levels (jaxvq/ops/fsq.py), projected back. No codebook,
no auxiliary loss; K = prod L_i implicit codes."""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from jaxvq.schema import Field
from jaxvq.models.quantizers.base import Quantizer, QuantizerOutput
from jaxvq.ops import fsq, vq

FSQ_FIELDS = {
    "name": Field("fsq", "the quantizer", choices=("fsq",)),
    "levels": Field((8, 8, 8), "L_i, the levels of each of the d channels (K = prod L_i; the "
                    "paper's are e.g. 8,5,5,5 for K = 1000)", minimum=2),
}


class FiniteScalarQuantizer(Quantizer):
  """z_e [B, h, w, D] -> d bounded, rounded channels -> an index in [0, prod L_i) [B, h, w]."""

  CONFIG = FSQ_FIELDS

  def __init__(self, q, dim: int, *, rngs: nnx.Rngs):
    self.levels = tuple(int(level) for level in q.levels)
    d = len(self.levels)
    self.project_in = nnx.Linear(dim, d, rngs=rngs)
    self.project_out = nnx.Linear(d, dim, rngs=rngs)
    self.num_codes = fsq.num_codes(self.levels)

  def __call__(self, z_e, key, training=False) -> QuantizerOutput:
    del key, training
    z = self.project_in(z_e)                                       # [B, h, w, d]
    q = fsq.quantize(z, self.levels)
    return QuantizerOutput(
        quantized=self.project_out(q.quantized), indices=q.indices, loss=q.loss,
        per_example={"loss": jnp.zeros(z_e.shape[:1])},
        batch_metrics={"perplexity": q.perplexity, "codebook_usage": q.usage},
        latents=jax.lax.stop_gradient(z))

  def encode(self, z_e):
    return fsq.codes_to_indices(fsq.to_codes(self.project_in(z_e), self.levels), self.levels)

  def decode(self, indices):
    return self.project_out(fsq.indices_to_codes(indices, self.levels))

  def code_counts(self, indices, weights=None):
    return vq.code_counts(indices, self.num_codes, weights)[None]
