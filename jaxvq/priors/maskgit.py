"""MaskGIT (Chang et al. 2022, "MaskGIT: Masked Generative Image Transformer"): a bidirectional
transformer that predicts masked codes of a grid from the codes it sees.

The grid [B, h, w] is read as N = h * w tokens: each code's embedding (K + 1 rows, row K the
[MASK] token) plus a learned position embedding; a class-conditional prior prepends a class
token (num_classes + 1 rows, the last "no class", for classifier-free guidance). Attention is
bidirectional; the output at each code position gives K logits.

Training masks each grid's codes by the cosine schedule (ops.decoding.masks_for_training:
ceil(cos(pi r / 2) N) of them, r ~ U[0, 1)) and minimises the cross-entropy of the masked codes
(the paper's eq. 1, averaged over the batch's masked codes). That is no likelihood of the grid:
HAS_LIKELIHOOD is False, so there are no bits per code and `jaxvq bits` refuses it; its metric
is the masked codes' cross-entropy, with the evaluation's masks drawn from the fixed
evaluation key, so that evaluations compare.

Sampling is MaskGIT's parallel decoding (ops.decoding.parallel_decode) in one compiled loop of
T steps (`steps`, config decoding_steps by default), each a forward pass over the whole grid.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx

from jaxvq.errors import ConfigError
from jaxvq.models.base import ModelOutput
from jaxvq.nets.transformer import Transformer
from jaxvq.ops import decoding
from jaxvq.priors.base import LABEL_DROPOUT_FIELD, PRIOR_FIELDS, Prior
from jaxvq.schema import Field


class MaskGITPrior(Prior):
  """Masked-code prediction over [h, w] grids of K codes: tokens [B, N] (code or K = [MASK])
  -> logits [B, N, K] of every position.

  Trains on a VQ-VAE run's codes (config.dataset = "codes:VQVAE_WORKDIR"); K, the classes and
  the images' size come from them (Prior.configure).
  """

  CONFIG = {
      "name": Field("maskgit", "the model", choices=("maskgit",)),
      "dim": Field(256, "width of the transformer (divisible by heads)", minimum=1),
      "depth": Field(8, "transformer blocks", minimum=1),
      "heads": Field(8, "attention heads", minimum=1),
      "label_dropout": LABEL_DROPOUT_FIELD,
      "decoding_steps": Field(8, "T, the parallel decoding steps when sampling without `steps` "
                              "(at most the grid's positions)", minimum=1),
      "choice_temperature": Field(4.5, "scale of the Gumbel noise on the confidences that "
                                  "choose which codes stay masked, annealed to 0 over the "
                                  "steps (the paper's 4.5)", minimum=0.0),
      **PRIOR_FIELDS,
  }
  HAS_LIKELIHOOD = False
  SAMPLERS = {"compiled_loop": "sample"}
  SAMPLE_OPTIONS = ("top_k", "top_p", "guidance", "steps", "choice_temperature")
  SUMMARY_METRICS = ("masked_bits_per_code",)

  def __init__(self, cfg, grid_shape, *, dtype=jnp.float32, rngs: nnx.Rngs):
    super().__init__(cfg, grid_shape, dtype)
    if cfg.dim % cfg.heads:
      raise ConfigError(f"model.dim {cfg.dim} must be divisible by model.heads {cfg.heads}")
    if cfg.label_dropout and not self.num_classes:
      raise ConfigError(f"model.label_dropout {cfg.label_dropout} drops class labels: set "
                        f"model.class_conditional=True, or label_dropout=0")
    if cfg.decoding_steps > self.num_positions:
      raise ConfigError(f"model.decoding_steps {cfg.decoding_steps} is more than the "
                        f"{self.num_positions} positions of the {self.grid_shape} grid")
    self.decoding_steps = int(cfg.decoding_steps)
    self.choice_temperature = float(cfg.choice_temperature)
    init = nnx.initializers.normal(0.02)
    self.embed = nnx.Embed(self.num_codes + 1, cfg.dim, embedding_init=init, rngs=rngs)
    # One class token per class and the last for "no class"; none for an unconditional prior.
    self.class_embed = (nnx.Embed(self.num_classes + 1, cfg.dim, embedding_init=init, rngs=rngs)
                        if self.num_classes else None)
    length = self.num_positions + (1 if self.num_classes else 0)
    self.position = nnx.Param(init(rngs.params(), (length, cfg.dim)))
    self.transformer = Transformer(cfg.dim, cfg.depth, cfg.heads, rngs=rngs)
    self.head = nnx.Linear(cfg.dim, self.num_codes, rngs=rngs)

  @property
  def mask_token(self) -> int:
    return self.num_codes

  def masked_logits(self, tokens: jax.Array, labels=None) -> jax.Array:
    """[B, N] tokens (codes, or mask_token where masked), [B] labels (null_class: none)
    -> [B, N, K] logits of every position's code."""
    x = self.embed(tokens)
    if self.num_classes:
      classes = self.class_embed(self.labels_or_default(labels, tokens.shape[0]))
      x = jnp.concatenate([classes[:, None], x], axis=1)
    h = self.transformer(x + self.position[...], causal=False)
    return self.head(h[:, -self.num_positions:])

  def masked_nats(self, codes: jax.Array, labels, masks: jax.Array) -> tuple:
    """-log p of the masked codes given the rest: codes [B, h, w], masks [B, N] bool ->
    (nats summed over each grid's masked codes [B], how many were masked [B])."""
    flat = codes.reshape(codes.shape[0], -1)
    log_p = jax.nn.log_softmax(self.masked_logits(jnp.where(masks, self.mask_token, flat), labels))
    picked = jnp.take_along_axis(log_p, flat[..., None], axis=-1)[..., 0]      # [B, N]
    return -jnp.sum(jnp.where(masks, picked, 0.0), axis=-1), jnp.sum(masks, axis=-1)

  def ordered_nll(self, codes: jax.Array, labels=None, order=None) -> jax.Array:
    """-log p in nats [B] of code grids [B, h, w] under the decoder that unmasks one code per
    step in `order` (a permutation of the N positions; None: raster order):
    sum_i -log p(c_order[i] | the codes order[:i], the rest masked).

    Each factor is a normalised distribution, so this is an exact likelihood of that one-code-
    per-step decoder (not of the parallel decoder, which draws several codes at once): with
    raster order it compares MaskGIT's conditionals with an autoregressive prior's bits per
    code. N forward passes, one per position."""
    flat = codes.reshape(codes.shape[0], -1)
    order = jnp.arange(self.num_positions) if order is None else jnp.asarray(order)
    rank = jnp.argsort(order)                                  # rank[p]: the step p is decoded

    def add_position(i, nats):
      tokens = jnp.where(rank < i, flat, self.mask_token)      # the codes before step i
      log_p = jax.nn.log_softmax(self.masked_logits(tokens, labels)[:, order[i]])  # [B, K]
      return nats - jnp.take_along_axis(log_p, flat[:, order[i], None], axis=-1)[:, 0]

    return jax.lax.fori_loop(0, self.num_positions, add_position,
                             jnp.zeros(flat.shape[:1], jnp.float32))

  def code_nll(self, codes: jax.Array, labels=None) -> jax.Array:
    raise NotImplementedError(
        "the maskgit prior gives no exact likelihood of a code grid (it is trained to predict "
        "masked codes): there is no -log p(codes), so no bits per code and no `jaxvq bits`")

  def loss_nats(self, codes: jax.Array, labels, key: jax.Array, training: bool) -> tuple:
    """The masked codes' nats [B] and their number [B]: each grid masked by the cosine schedule
    from `key`; in training each label becomes "no class" at label_dropout."""
    mask_key, label_key = jax.random.split(key)
    if training:
      labels = self.drop_labels(labels, codes.shape[0], label_key)
    masks = decoding.masks_for_training(mask_key, codes.shape[0], self.num_positions)
    return self.masked_nats(codes, labels, masks)

  def __call__(self, codes: jax.Array, key: jax.Array, labels=None,
               training: bool = False) -> ModelOutput:
    nats, masked = self.loss_nats(codes, labels, key, training)
    per_code = nats / masked
    return ModelOutput(
        loss=jnp.sum(nats) / jnp.sum(masked),
        per_example={"loss": per_code, "masked_bits_per_code": per_code / math.log(2.0)})

  def sampling_logits(self, tokens: jax.Array, labels, guidance: float = 1.0) -> jax.Array:
    """The logits the decoder draws from: [B, N] tokens -> [B, N, K]; with guidance != 1,
    l_u + s (l_c - l_u) of one pass over [2 B] (the classes, then "no class")."""
    labels = self.guidance_labels(labels, tokens.shape[0], guidance)
    if guidance == 1.0:
      return self.masked_logits(tokens, labels)
    both = self.masked_logits(jnp.concatenate([tokens, tokens]), labels)
    return decoding.guided_logits(both[:tokens.shape[0]], both[tokens.shape[0]:], guidance)

  def sequential_calls(self, how: str = "compiled_loop", steps: int = 0, **options) -> int:
    """One forward pass per decoding step."""
    del how, options
    return steps or self.decoding_steps

  def sample(self, key: jax.Array, num: int, labels=None, temperature: float = 1.0,
             top_k: int = 0, top_p: float = 1.0, guidance: float = 1.0,
             steps: int = 0, choice_temperature: float | None = None) -> jax.Array:
    """`num` code grids [num, h, w] by MaskGIT's parallel decoding in one compiled loop of
    `steps` forward passes (0: config decoding_steps), the confidences' Gumbel noise scaled by
    `choice_temperature` (None: config choice_temperature); top_k, top_p, guidance, steps and
    choice_temperature are Python numbers (fixed when compiled)."""
    if choice_temperature is None:
      choice_temperature = self.choice_temperature
    codes, _ = decoding.parallel_decode(
        key, lambda tokens: self.sampling_logits(tokens, labels, guidance), num,
        self.num_positions, self.mask_token, steps or self.decoding_steps, temperature,
        choice_temperature, top_k, top_p)
    return codes.reshape((num,) + self.grid_shape)
