"""VQ-VAE (van den Oord et al. 2017, "Neural Discrete Representation Learning"): a conv
encoder, a codebook, a conv decoder.

loss = reconstruction + alpha * ||sg(z_e) - z_q||^2 + beta * ||z_e - sg(z_q)||^2,
where the reconstruction term is the MSE, divided by the variance of the
training data when `normalize_reconstruction` is set (DeepMind's recipe).

The codebook is learned by gradient (`codebook_update = "gradient"`) or by
exponential moving averages (`"ema"`: no codebook loss, the codebook is state
that training steps update, not a parameter). Either can start from k-means
on the first batches' encoder outputs and restart codes that fall out of use;
see jaxvq/ops/codebook.py. Options: cosine-similarity codes (inputs and codes
l2-normalised) and a lower lookup dimension (z_e projected to `codebook_dim`
for the lookup and back, as ViT-VQGAN's factorised codes).
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx

from jaxvq.config.schema import Field
from jaxvq.models.base import ImageModel, ModelOutput
from jaxvq.nets import CONV_FIELDS, build_encoder_decoder
from jaxvq.ops import codebook as codebook_lib
from jaxvq.ops import vq
from jaxvq.ops.reduce import per_example_mean

CODEBOOK_UPDATES = ("gradient", "ema")

# config.model.quantizer: the codebook and how it is kept alive.
VQ_FIELDS = {
    "name": Field("vq", "the quantizer", choices=("vq",)),
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
    "cosine_codebook": Field(False, "l2-normalised codes and inputs"),
    "codebook_dim": Field(0, "lookup dimension d < D, z_e projected to it and back (0: d = D)",
                          minimum=0),
}


class CodebookStatistic(nnx.Variable):
  """Codebook state that training steps update directly, never the optimizer."""


def _l2_normalize(x):
  return x * jax.lax.rsqrt(jnp.maximum(jnp.sum(x * x, axis=-1, keepdims=True), 1e-12))


class VQVAE(ImageModel):
  """x [B, H, W, C] -> z_e [B, h, w, D] -> nearest codes [B, h, w] -> x_hat [B, H, W, C].

  h, w = H/4, W/4: a 28x28 image is a 7x7 grid of indices into K codes.
  """

  CONFIG = {
      "name": Field("vqvae", "the model", choices=("vqvae",)),
      **CONV_FIELDS,
      "embedding_dim": Field(64, "D, the channels of the encoder's output", minimum=1),
      "normalize_reconstruction": Field(True, "divide the MSE by the data variance (the "
                                        "reconstruction term of the loss)"),
      "quantizer": VQ_FIELDS,
  }
  SUMMARY_METRICS = ("normalized_mse", "perplexity", "codebook_usage")

  def __init__(self, cfg, image_shape, *, data_variance: float, dtype=jnp.float32,
               rngs: nnx.Rngs):
    q = cfg.quantizer
    self.encoder, self.decoder, self.grid_shape = build_encoder_decoder(
        cfg, image_shape, encoder_out=cfg.embedding_dim, decoder_in=cfg.embedding_dim,
        dtype=dtype, rngs=rngs)
    code_dim = q.codebook_dim or cfg.embedding_dim
    factorized = bool(q.codebook_dim)
    self.project_in = nnx.Linear(cfg.embedding_dim, code_dim, rngs=rngs) if factorized else None
    self.project_out = nnx.Linear(code_dim, cfg.embedding_dim, rngs=rngs) if factorized else None
    limit = math.sqrt(3.0 / code_dim)  # Sonnet's uniform variance scaling
    initial = jax.random.uniform(rngs.params(), (q.num_codes, code_dim),
                                 minval=-limit, maxval=limit)
    self.ema = q.codebook_update == "ema"
    if self.ema:
      self.codebook = CodebookStatistic(initial)
      cluster_size, embed_sum = codebook_lib.ema_state_for(initial)
      self.cluster_size = CodebookStatistic(cluster_size)   # N [K]
      self.embed_sum = CodebookStatistic(embed_sum)         # m [K, d]
    else:
      self.codebook = nnx.Param(initial)
    self.usage = CodebookStatistic(jnp.zeros((q.num_codes,)))  # EMA of assignments per step
    self.num_codes = q.num_codes
    self.cosine = q.cosine_codebook
    self.commitment_cost = q.commitment_cost
    self.codebook_cost = 0.0 if self.ema else q.codebook_cost
    self.ema_decay, self.ema_epsilon = q.ema_decay, q.ema_epsilon
    self.usage_decay = q.usage_decay
    self.dead_code_threshold = q.dead_code_threshold
    self.restart_every_steps = q.restart_every_steps
    self.kmeans_init_batches = q.kmeans_init_batches
    self.kmeans_iterations = q.kmeans_iterations
    self.data_variance = data_variance
    self.normalize_reconstruction = cfg.normalize_reconstruction

  # -------------------------------------------------------------- code space

  def to_code_space(self, z_e: jax.Array) -> jax.Array:
    """Encoder output [..., D] -> the vectors that are quantized [..., d]."""
    z = self.project_in(z_e) if self.project_in is not None else z_e
    return _l2_normalize(z) if self.cosine else z

  def codes(self) -> jax.Array:
    """The codebook as the lookup sees it: [K, d]."""
    c = self.codebook[...]
    return _l2_normalize(c) if self.cosine else c

  def from_code_space(self, z_q: jax.Array) -> jax.Array:
    return self.project_out(z_q) if self.project_out is not None else z_q

  # -------------------------------------------------------------- tokenizer

  def encode_to_indices(self, x: jax.Array) -> jax.Array:
    """The nearest code of each latent position.

    Args:
      x: images [B, H, W, C] in [0, 1].

    Returns:
      [B, h, w] int32 indices into the K codes (h, w = H/4, W/4).
    """
    return vq.nearest_code(self.to_code_space(self.encoder(x)), self.codes())

  def decode_from_indices(self, indices: jax.Array) -> jax.Array:
    """Images from a grid of codes (a tokenizer's decode, as MaskGIT's).

    Args:
      indices: [B, h, w] int code indices in [0, K).

    Returns:
      [B, H, W, C] images in [0, 1].
    """
    z_q = vq.lookup(indices, self.codes())
    return jnp.clip(self.decoder(self.from_code_space(z_q)) + 0.5, 0.0, 1.0)

  # -------------------------------------------------------------- training

  def __call__(self, x: jax.Array, key: jax.Array, labels=None) -> ModelOutput:
    del key, labels  # the VQ-VAE is deterministic
    z = self.to_code_space(self.encoder(x))                      # [B, h, w, d]
    q = vq.quantize(z, self.codes(), commitment_cost=self.commitment_cost,
                           codebook_cost=self.codebook_cost)
    x_hat = self.decoder(self.from_code_space(q.quantized)) + 0.5  # [B, H, W, C]
    mse = per_example_mean((x_hat - x) ** 2)
    normalized_mse = mse / self.data_variance
    reconstruction = normalized_mse if self.normalize_reconstruction else mse
    # Value of both the codebook and the commitment loss, per example.
    vq_distance = jax.lax.stop_gradient(per_example_mean((z - q.quantized) ** 2))
    counts = vq.code_counts(q.indices, self.num_codes)
    return ModelOutput(
        loss=jnp.mean(reconstruction) + q.loss,
        per_example={
            "loss": reconstruction + (self.codebook_cost + self.commitment_cost) * vq_distance,
            "mse": mse, "normalized_mse": normalized_mse,
            "codebook_loss": vq_distance, "commitment_loss": vq_distance},
        reconstruction=jnp.clip(x_hat, 0.0, 1.0),
        code_indices=q.indices,
        latents=jax.lax.stop_gradient(z),
        batch_metrics={"perplexity": q.perplexity,
                       "codebook_usage": vq.usage_from_counts(counts)})

  def _set_codebook(self, codebook: jax.Array, cluster_size: jax.Array | None = None) -> None:
    """Sets the codebook, and for EMA statistics (N, m) that reproduce it."""
    self.codebook[...] = codebook
    if self.ema:
      self.cluster_size[...], self.embed_sum[...] = codebook_lib.ema_state_for(codebook, cluster_size)

  def update_after_step(self, out: ModelOutput, key: jax.Array, step: jax.Array) -> dict:
    flat = out.latents.reshape(-1, out.latents.shape[-1])        # [N, d]
    indices = out.code_indices.reshape(-1)                       # [N]
    self.usage[...] = codebook_lib.usage_update(self.usage[...], indices, decay=self.usage_decay)
    if self.ema:
      cluster_size, embed_sum = codebook_lib.ema_update(
          self.cluster_size[...], self.embed_sum[...], flat, indices, decay=self.ema_decay)
      self.cluster_size[...], self.embed_sum[...] = cluster_size, embed_sum
      self.codebook[...] = codebook_lib.ema_codebook(cluster_size, embed_sum, self.ema_epsilon)
    if not self.restart_every_steps:
      return {}
    dead, replacements = codebook_lib.dead_code_candidates(
        key, self.usage[...], flat, self.dead_code_threshold)
    dead = dead & ((step + 1) % self.restart_every_steps == 0)
    self.codebook[...] = jnp.where(dead[:, None], replacements, self.codebook[...])
    if self.ema:  # a restarted code counts as one assignment of its new vector
      self.cluster_size[...] = jnp.where(dead, 1.0, self.cluster_size[...])
      self.embed_sum[...] = jnp.where(dead[:, None], replacements, self.embed_sum[...])
    self.usage[...] = jnp.where(dead, self.dead_code_threshold, self.usage[...])
    return {"num_codes_restarted": jnp.sum(dead)}

  @property
  def num_initialization_batches(self) -> int:
    return self.kmeans_init_batches

  def initialize_from_data(self, batches: jax.Array, key: jax.Array) -> None:
    """k-means of the encoder outputs of `batches` [n, B, H, W, C] sets the codebook."""
    if not self.kmeans_init_batches:
      return
    z = self.to_code_space(self.encoder(batches.reshape((-1,) + batches.shape[2:])))
    centers, counts = codebook_lib.kmeans(key, z.reshape(-1, z.shape[-1]), self.num_codes,
                                          self.kmeans_iterations)
    self._set_codebook(centers, counts / batches.shape[0])   # N: assignments per batch
