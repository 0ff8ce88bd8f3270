"""The VQ-VAE's vector quantizer (van den Oord et al. 2017), with what keeps its codebook alive:
EMA updates, k-means initialisation, dead-code restarts (jaxvq/ops/codebook.py), cosine or
low-dimensional codes, the rotation trick (Fifty et al. 2024) and MaskGIT's entropy loss."""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx

from jaxvq.schema import Field
from jaxvq.errors import ConfigError
from jaxvq.models.quantizers.base import CodebookStatistic, Quantizer, QuantizerOutput
from jaxvq.ops import codebook as codebook_lib
from jaxvq.ops import vq
from jaxvq.ops.reduce import per_example_mean

CODEBOOK_UPDATES = ("gradient", "ema")

# The codebook and how it is kept alive; residual VQ has them per stage.
CODEBOOK_FIELDS = {
    "num_codes": Field(512, "K, the number of codes", minimum=2),
    "commitment_cost": Field(0.25, "beta, the weight of the commitment loss", minimum=0.0),
    "codebook_cost": Field(1.0, "alpha, the weight of the codebook loss (gradient codebooks)",
                           minimum=0.0),
    "codebook_update": Field("gradient", "gradient (the codebook loss) or ema (moving "
                             "averages; no codebook loss)", choices=CODEBOOK_UPDATES),
    "ema_decay": Field(0.99, "gamma of the EMA codebook", minimum=0.0, below=1.0),
    "ema_epsilon": Field(1e-5, "Laplace smoothing of the EMA cluster sizes", above=0.0),
    "kmeans_init_batches": Field(0, "k-means of the encoder outputs of this many first "
                                 "batches sets the codebook (0: off)", minimum=0),
    "kmeans_iterations": Field(10, "Lloyd iterations after k-means++ seeding", minimum=0),
    "restart_every_steps": Field(0, "look for dead codes this often (0: never)", minimum=0),
    "dead_code_threshold": Field(1.0, "a code is dead below this EMA of assignments per step",
                                 minimum=0.0),
    "usage_decay": Field(0.99, "decay of that usage EMA", minimum=0.0, below=1.0),
    "search_chunk_size": Field(0, "codes per chunk of the nearest-code search, whose memory "
                               "is then N x chunk, not N x K (0: automatic, chunks when "
                               "N x K > 2^24; -1: never)", minimum=-1, resumable=True),
}

VQ_FIELDS = {
    "name": Field("vq", "the quantizer", choices=("vq",)),
    **CODEBOOK_FIELDS,
    "cosine_codebook": Field(False, "l2-normalised codes and inputs"),
    "codebook_dim": Field(0, "lookup dimension d < D, z_e projected to it and back (0: d = D)",
                          minimum=0),
    "rotation_trick": Field(False, "carry the decoder's gradient to z_e through the rotation "
                            "that maps z_e to z_q (Fifty et al. 2024), not the identity"),
    "entropy_loss_weight": Field(0.0, "weight of MaskGIT's entropy loss (0: none)", minimum=0.0),
    "entropy_temperature": Field(0.01, "its softmax temperature over -distances", above=0.0),
    "diversity_weight": Field(1.0, "gamma, its batch-entropy term's weight", minimum=0.0),
}


class Codebook(nnx.Module):
  """K code vectors of size d (`vectors` [K, d], or Q stacked codebooks [Q, K, d] with
  `stages`), learned by gradient or EMA, with the usage EMA that finds dead codes. The state
  updates are jaxvq/ops/codebook.py's, applied to one stage at a time."""

  def __init__(self, q, dim: int, *, stages: int = 0, rngs: nnx.Rngs):
    shape = ((stages,) if stages else ()) + (q.num_codes, dim)
    limit = math.sqrt(3.0 / dim)  # Sonnet's uniform variance scaling
    initial = jax.random.uniform(rngs.params(), shape, minval=-limit, maxval=limit)
    self.ema = q.codebook_update == "ema"
    if self.ema:
      self.vectors = CodebookStatistic(initial)
      self.cluster_size = CodebookStatistic(jnp.ones(shape[:-1], jnp.float32))  # N [(Q,) K]
      self.embed_sum = CodebookStatistic(initial * 1.0)                         # m [(Q,) K, d]
    else:
      self.vectors = nnx.Param(initial)
    self.usage = CodebookStatistic(jnp.zeros(shape[:-1]))  # EMA of assignments per step
    self.num_codes = q.num_codes
    self.ema_decay, self.ema_epsilon, self.usage_decay = q.ema_decay, q.ema_epsilon, q.usage_decay
    self.dead_code_threshold = q.dead_code_threshold
    self.restart_every_steps = q.restart_every_steps
    self.kmeans_iterations = q.kmeans_iterations

  def set(self, codebook: jax.Array, cluster_size: jax.Array | None = None) -> None:
    """Sets the codebook, and for EMA statistics (N, m) that reproduce it."""
    self.vectors[...] = codebook
    if self.ema:
      self.cluster_size[...], self.embed_sum[...] = codebook_lib.ema_state_for(codebook,
                                                                               cluster_size)

  def update(self, flat: jax.Array, indices: jax.Array, key: jax.Array, step: jax.Array,
             stage=None) -> jax.Array:
    """One step's updates from inputs [N, d] and their codes [N] (of `stage`); returns how many
    codes were restarted."""
    at = (lambda v: v[...]) if stage is None else (lambda v: v[...][stage])

    def put(var, value):
      var[...] = value if stage is None else var[...].at[stage].set(value)

    put(self.usage, codebook_lib.usage_update(at(self.usage), indices, decay=self.usage_decay))
    if self.ema:
      cluster_size, embed_sum = codebook_lib.ema_update(
          at(self.cluster_size), at(self.embed_sum), flat, indices, decay=self.ema_decay)
      put(self.cluster_size, cluster_size)
      put(self.embed_sum, embed_sum)
      put(self.vectors, codebook_lib.ema_codebook(cluster_size, embed_sum, self.ema_epsilon))
    if not self.restart_every_steps:
      return jnp.zeros((), jnp.int32)
    dead, replacements = codebook_lib.dead_code_candidates(
        key, at(self.usage), flat, self.dead_code_threshold)
    dead = dead & ((step + 1) % self.restart_every_steps == 0)
    put(self.vectors, jnp.where(dead[:, None], replacements, at(self.vectors)))
    if self.ema:  # a restarted code counts as one assignment of its new vector
      put(self.cluster_size, jnp.where(dead, 1.0, at(self.cluster_size)))
      put(self.embed_sum, jnp.where(dead[:, None], replacements, at(self.embed_sum)))
    put(self.usage, jnp.where(dead, self.dead_code_threshold, at(self.usage)))
    return jnp.sum(dead)

  def fit(self, key: jax.Array, points: jax.Array, num_batches: int) -> jax.Array:
    """k-means of `points` [N, d] sets the (single) codebook; returns the centers."""
    centers, counts = codebook_lib.kmeans(key, points, self.num_codes, self.kmeans_iterations)
    self.set(centers, counts / num_batches)   # N: assignments per batch
    return centers


class VectorQuantizer(Quantizer):
  """z_e [B, h, w, D] -> the nearest of K codes [B, h, w] -> z_q [B, h, w, D]."""

  CONFIG = VQ_FIELDS

  def __init__(self, q, dim: int, *, rngs: nnx.Rngs):
    code_dim = q.codebook_dim or dim
    factorized = bool(q.codebook_dim)
    self.project_in = nnx.Linear(dim, code_dim, rngs=rngs) if factorized else None
    self.project_out = nnx.Linear(code_dim, dim, rngs=rngs) if factorized else None
    self.codebook = Codebook(q, code_dim, rngs=rngs)
    self.num_codes = q.num_codes
    self.cosine = q.cosine_codebook
    self.commitment_cost = q.commitment_cost
    self.codebook_cost = 0.0 if self.codebook.ema else q.codebook_cost
    self.rotation_trick = q.rotation_trick
    self.entropy_loss_weight = q.entropy_loss_weight
    self.entropy_temperature, self.diversity_weight = q.entropy_temperature, q.diversity_weight
    self.kmeans_init_batches = q.kmeans_init_batches
    self.search_chunk_size = q.search_chunk_size
    if q.entropy_loss_weight and q.search_chunk_size > 0:
      raise ConfigError(
          f"the entropy loss needs every code's distance, so the nearest-code search cannot "
          f"be chunked: set config.model.quantizer.search_chunk_size=0 (automatic: it then "
          f"holds them all) or entropy_loss_weight=0 (got search_chunk_size="
          f"{q.search_chunk_size})")

  def to_code_space(self, z_e: jax.Array) -> jax.Array:
    """Encoder output [..., D] -> the vectors that are quantized [..., d]."""
    z = self.project_in(z_e) if self.project_in is not None else z_e
    return vq.l2_normalize(z) if self.cosine else z

  def codes(self) -> jax.Array:
    """The codebook as the lookup sees it: [K, d]."""
    c = self.codebook.vectors[...]
    return vq.l2_normalize(c) if self.cosine else c

  def from_code_space(self, z_q: jax.Array) -> jax.Array:
    return self.project_out(z_q) if self.project_out is not None else z_q

  def __call__(self, z_e, key, training=False) -> QuantizerOutput:
    del key, training
    z = self.to_code_space(z_e)                                   # [B, h, w, d]
    q = vq.quantize(z, self.codes(), commitment_cost=self.commitment_cost,
                    codebook_cost=self.codebook_cost, rotation_trick=self.rotation_trick,
                    entropy_loss_weight=self.entropy_loss_weight,
                    entropy_temperature=self.entropy_temperature,
                    diversity_weight=self.diversity_weight,
                    search_chunk_size=self.search_chunk_size)
    # Value of both the codebook and the commitment loss, per example.
    distance = jax.lax.stop_gradient(per_example_mean((z - q.quantized) ** 2))
    metrics = {"perplexity": q.perplexity, "codebook_usage": q.usage}
    if q.entropy_loss is not None:
      metrics["entropy_loss"] = q.entropy_loss
    return QuantizerOutput(
        quantized=self.from_code_space(q.quantized), indices=q.indices, loss=q.loss,
        per_example={"loss": (self.codebook_cost + self.commitment_cost) * distance,
                     "codebook_loss": distance, "commitment_loss": distance},
        batch_metrics=metrics, latents=jax.lax.stop_gradient(z))

  def encode(self, z_e):
    return vq.nearest_code(self.to_code_space(z_e), self.codes(), self.search_chunk_size)

  def decode(self, indices):
    return self.from_code_space(vq.lookup(indices, self.codes()))

  def code_counts(self, indices, weights=None):
    return vq.code_counts(indices, self.num_codes, weights)[None]

  @property
  def num_initialization_batches(self) -> int:
    return self.kmeans_init_batches

  def initialize_from_data(self, z_e, key, num_batches):
    z = self.to_code_space(z_e)
    self.codebook.fit(key, z.reshape(-1, z.shape[-1]), num_batches)

  def update_after_step(self, out, key, step):
    flat = out.latents.reshape(-1, out.latents.shape[-1])        # [N, d]
    restarted = self.codebook.update(flat, out.indices.reshape(-1), key, step)
    return {"num_codes_restarted": restarted} if self.codebook.restart_every_steps else {}
