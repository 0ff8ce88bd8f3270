"""Autoregressive transformer prior over VQ-VAE code grids, GPT-style as in taming-transformers
(Esser et al. 2021, "Taming Transformers for High-Resolution Image Synthesis") and LlamaGen
(Sun et al. 2024, "Autoregressive Model Beats Diffusion").

The grid [B, h, w] is read in raster order as a sequence of N = h * w codes, modelled by a
decoder-only causal transformer: p(c | y) = prod_i p(c_i | c_<i, y). Its input at position i
is a learned position embedding plus, at i = 0, a start token (for a class-conditional prior,
the embedding of the class y, or of a "no class" row for classifier-free guidance) and at
i > 0 the embedding of code i - 1; its LayerNorm'd output at position i gives the K logits
of code i. Causal attention keeps position i from seeing codes >= i.

Sampling runs one compiled loop over the N positions with a key/value cache
(jaxvq/nets/transformer.py): each step runs the transformer at one position only.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from jaxvq.errors import ConfigError
from jaxvq.nets.transformer import Transformer
from jaxvq.ops.decoding import guided_logits, sample_logits
from jaxvq.ops.reduce import per_example_sum
from jaxvq.priors.base import LABEL_DROPOUT_FIELD, PRIOR_FIELDS, Prior
from jaxvq.schema import Field


class TransformerPrior(Prior):
  """p(codes | label) over [h, w] grids of K codes: codes [B, h, w] -> logits [B, h, w, K].

  Trains on a VQ-VAE run's codes (config.dataset = "codes:VQVAE_WORKDIR"); K, the classes and
  the images' size come from them (Prior.configure). A class-conditional prior has
  num_classes + 1 start tokens, the last one "no class": training with label_dropout > 0
  teaches it p(codes) too, which classifier-free guidance (`guidance`) needs.
  """

  CONFIG = {
      "name": Field("transformer", "the model", choices=("transformer",)),
      "dim": Field(128, "width of the transformer (divisible by heads)", minimum=1),
      "depth": Field(4, "transformer blocks", minimum=1),
      "heads": Field(4, "attention heads", minimum=1),
      "label_dropout": LABEL_DROPOUT_FIELD,
      **PRIOR_FIELDS,
  }
  SAMPLERS = {"compiled_loop": "sample", "compiled_loop_without_cache": "sample_without_cache"}
  SAMPLE_OPTIONS = ("top_k", "top_p", "guidance")

  def __init__(self, cfg, grid_shape, *, dtype=jnp.float32, rngs: nnx.Rngs):
    if cfg.dim % cfg.heads:
      raise ConfigError(f"model.dim {cfg.dim} must be divisible by model.heads {cfg.heads}")
    super().__init__(cfg, grid_shape, dtype)
    dim = cfg.dim
    self.embed = nnx.Embed(self.num_codes, dim, rngs=rngs)
    init = nnx.initializers.normal(0.02)
    if self.num_classes:   # one row per class, and the last for "no class"
      self.start = nnx.Embed(self.num_classes + 1, dim, embedding_init=init, rngs=rngs)
    else:
      self.start = nnx.Param(init(rngs.params(), (dim,)))
    self.position = nnx.Param(init(rngs.params(), (self.num_positions, dim)))
    self.transformer = Transformer(dim, cfg.depth, cfg.heads, rngs=rngs)
    self.head = nnx.Linear(dim, self.num_codes, rngs=rngs)

  def start_tokens(self, labels, batch: int) -> jax.Array:
    """[B, D]: the class's embedding (class-conditional), else the one learned start vector."""
    if self.num_classes:
      return self.start(self.labels_or_default(labels, batch))
    return jnp.broadcast_to(self.start[...], (batch, self.start.shape[-1]))

  def logits(self, codes: jax.Array, labels=None) -> jax.Array:
    """[B, h, w] int codes -> [B, h, w, K]: position i's logits given the codes before it."""
    batch = codes.shape[0]
    flat = codes.reshape(batch, -1)
    x = jnp.concatenate([self.start_tokens(labels, batch)[:, None],
                         self.embed(flat[:, :-1])], axis=1) + self.position[...]
    return self.head(self.transformer(x, causal=True)).reshape(codes.shape + (-1,))

  def code_nll(self, codes: jax.Array, labels=None) -> jax.Array:
    """-log p(codes | label) in nats: [B, h, w] int codes -> [B]."""
    log_p = jax.nn.log_softmax(self.logits(codes, labels))
    return -per_example_sum(jnp.take_along_axis(log_p, codes[..., None], axis=-1)[..., 0])

  def loss_nats(self, codes: jax.Array, labels, key: jax.Array, training: bool) -> jax.Array:
    """-log p(codes | label); in training each label becomes "no class" at label_dropout."""
    if training:
      labels = self.drop_labels(labels, codes.shape[0], key)
    return self.code_nll(codes, labels)

  @staticmethod
  def _draw(key, position, logits, num: int, temperature, top_k, top_p, guidance):
    """Code `position` of each of the `num` grids from its logits [num or 2 num, K]."""
    if guidance != 1.0:
      logits = guided_logits(logits[:num], logits[num:], guidance)
    return sample_logits(jax.random.fold_in(key, position), logits, temperature, top_k, top_p)

  def sample(self, key: jax.Array, num: int, labels=None, temperature: float = 1.0,
             top_k: int = 0, top_p: float = 1.0, guidance: float = 1.0) -> jax.Array:
    """`num` code grids [num, h, w], drawn position by position in one compiled loop with a
    key/value cache: each step runs the transformer at its position only.

    top_k, top_p and guidance are Python numbers (fixed when compiled); guidance != 1 runs
    the batch twice, with the classes and with "no class", and draws from l_u + s (l_c - l_u).
    """
    labels = self.guidance_labels(labels, num, guidance)
    repeats = 1 if guidance == 1.0 else 2
    start = self.start_tokens(labels, num * repeats)[:, None]            # [B, 1, D]
    cache = self.transformer.init_cache(num * repeats, self.num_positions)

    def sample_position(position, carry):
      codes, cache = carry
      previous = jax.lax.dynamic_index_in_dim(codes, jnp.maximum(position - 1, 0), axis=1)
      x = jnp.where(position == 0, start, self.embed(jnp.tile(previous, (repeats, 1))))
      x = x + jax.lax.dynamic_index_in_dim(self.position[...], position, keepdims=True)
      h, cache = self.transformer.step(x, cache, position)
      chosen = self._draw(key, position, self.head(h[:, 0]), num, temperature, top_k, top_p,
                          guidance)
      return jax.lax.dynamic_update_index_in_dim(codes, chosen, position, axis=1), cache

    codes = jnp.zeros((num, self.num_positions), jnp.int32)
    codes = jax.lax.fori_loop(0, self.num_positions, sample_position, (codes, cache))[0]
    return codes.reshape((num,) + self.grid_shape)

  def sample_without_cache(self, key: jax.Array, num: int, labels=None,
                           temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
                           guidance: float = 1.0) -> jax.Array:
    """Like `sample`, but a whole forward pass per position (the codes so far, zeros after)."""
    labels = self.guidance_labels(labels, num, guidance)
    repeats = 1 if guidance == 1.0 else 2

    def sample_position(position, codes):
      logits = self.logits(jnp.tile(codes, (repeats, 1)), labels)        # [B, N, K]
      logits = jax.lax.dynamic_index_in_dim(logits, position, axis=1, keepdims=False)
      chosen = self._draw(key, position, logits, num, temperature, top_k, top_p, guidance)
      return jax.lax.dynamic_update_index_in_dim(codes, chosen, position, axis=1)

    codes = jnp.zeros((num, self.num_positions), jnp.int32)
    codes = jax.lax.fori_loop(0, self.num_positions, sample_position, codes)
    return codes.reshape((num,) + self.grid_shape)
