"""What a VQ-VAE's quantizer is to the model: z_e in, z_q (with its gradient path) and integer
indices out, its auxiliary loss, and the state updates it makes after a step."""
from __future__ import annotations

import jax
from flax import nnx, struct


@struct.dataclass
class QuantizerOutput:
  quantized: jax.Array   # [B, h, w, D] what the decoder reads: z_q's values, gradient to z_e
  indices: jax.Array     # [B, h, w] int32 (residual VQ: [B, h, w, Q])
  loss: jax.Array        # scalar, the quantizer's auxiliary loss (codebook, commitment, entropy)
  per_example: dict      # name -> [B]: terms that evaluation averages; "loss" the auxiliary loss
  batch_metrics: dict    # scalars of this batch (perplexity, codebook usage, ...)
  latents: jax.Array     # what was quantized, no gradient: the codebook updates read it
  active: jax.Array = None  # residual VQ with quantizer dropout: [B, h, w, Q] stages in use


class CodebookStatistic(nnx.Variable):
  """Codebook state that training steps update directly, never the optimizer."""


class Quantizer(nnx.Module):
  """The interface of jaxvq/models/quantizers/*.py; each also defines its CONFIG section
  (`config.model.quantizer`)."""

  CONFIG: dict = {}
  num_codes: int            # K, the codes one index chooses among
  index_shape: tuple = ()   # the trailing shape of an index: () or (Q,) for residual VQ

  def __call__(self, z_e: jax.Array, key: jax.Array, training: bool = False) -> QuantizerOutput:
    raise NotImplementedError

  def encode(self, z_e: jax.Array) -> jax.Array:
    """[B, h, w, D] -> indices [B, h, w, *index_shape] int32."""
    raise NotImplementedError

  def decode(self, indices: jax.Array) -> jax.Array:
    """Indices [B, h, w, *index_shape] -> the decoder's input [B, h, w, D]."""
    raise NotImplementedError

  def code_counts(self, indices: jax.Array, weights: jax.Array | None = None) -> jax.Array:
    """How often each code is used: [S, K] (S = 1, or Q stages), `weights` [B] per example."""
    raise NotImplementedError

  @property
  def num_initialization_batches(self) -> int:
    return 0

  def initialize_from_data(self, z_e: jax.Array, key: jax.Array, num_batches: int) -> None:
    """Called once before the first step with the encoder outputs of the first batches."""

  def update_after_step(self, out: QuantizerOutput, key: jax.Array, step: jax.Array) -> dict:
    """State updates of a training step besides the optimizer's (EMA, restarts); metrics."""
    return {}
