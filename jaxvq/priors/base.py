"""The interface every prior over code grids meets, so that training, `jaxvq sample`,
`jaxvq bits` and `jaxvq quality --images=prior:` serve any of them.

A prior models p(c | y) over a tokenizer's code grids c [h, w] of K codes,
given an optional class y. It trains on `codes:TOKENIZER_DIR` through the one
training loop: its loss is the mean over grids of -log p(c | y) per position
(`code_nll`; a prior without an exact likelihood overrides `loss_nats`), and
it reports bits per code and bits per image dimension. It draws new grids with
`sample(key, num, labels, temperature, ...)`.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from jaxvq.errors import ConfigError, SampleError
from jaxvq.models.base import Model, ModelOutput
from jaxvq.schema import Field
from jaxvq.tokens.codes import CodeDataset

# The keys of every prior's config section: whether it is class-conditional, and what it
# takes from its codes (`configure`).
PRIOR_FIELDS = {
    "class_conditional": Field(False, "condition the prior on the class label"),
    "num_codes": Field(0, "K, from the codes", derived=True),
    "num_classes": Field(0, "classes of the codes' labels", derived=True),
    "image_dims": Field(0, "pixels x channels of the images the codes stand for",
                        derived=True),
}
# The config key of a prior that learns "no class" too, for classifier-free guidance
# (`Prior.drop_labels`).
LABEL_DROPOUT_FIELD = Field(0.0, "the rate at which training replaces the class by 'no class' "
                            "(classifier-free guidance needs it above 0)", minimum=0.0, below=1.0)


class Prior(Model):
  """p(codes | label) over [h, w] grids of K codes.

  A subclass sets, in its __init__ (through `Prior.__init__`): grid_shape (h, w), num_codes
  K, num_classes (0: unconditional), image_dims; and implements `code_nll` and `sample`.
  `HAS_LIKELIHOOD` is False for a prior whose `code_nll` is no exact likelihood (then
  `jaxvq bits` refuses it). `SAMPLERS` names its ways of sampling (method names), the
  first the default; all draw the same codes for the same key.
  """

  HAS_LIKELIHOOD = True
  SAMPLERS = {"compiled_loop": "sample"}
  # The options `sample` takes besides temperature (jaxvq.sampling.SAMPLE_OPTIONS names them
  # all and checks their values): top_k, top_p, guidance, steps, choice_temperature.
  SAMPLE_OPTIONS: tuple = ()
  SUMMARY_METRICS = ("bits_per_code",)

  @classmethod
  def configure(cls, model_config, dataset):
    """K, the classes and the images' size, from the codes the prior trains on."""
    if not isinstance(dataset, CodeDataset):
      raise ConfigError(f"a prior trains on a VQ-VAE's codes: set "
                        f"--config.dataset=codes:VQVAE_WORKDIR (got {dataset.name!r})")
    if len(dataset.grid_shape) != 2:
      raise ConfigError(
          f"the codes of {dataset.name} are residual ([h, w, Q] = {list(dataset.grid_shape)}); "
          f"the {model_config.name} prior models one grid of codes: train it on a VQ-VAE whose "
          f"quantizer is vq, fsq or lfq (a prior over the residual depth is not built yet)")
    if model_config.class_conditional and not dataset.num_classes:
      raise ConfigError(f"{dataset.metadata['dataset']} has no labels: set "
                        f"--config.model.class_conditional=False")
    model_config = model_config.copy_and_resolve_references()
    model_config.num_codes, model_config.num_classes = dataset.num_codes, dataset.num_classes
    model_config.image_dims = dataset.image_dims
    return model_config

  def __init__(self, cfg, grid_shape, dtype=jnp.float32):
    """`dtype`: what the subclass's nets compute in; a prior that passes it computes in
    float32 only, and refuses another."""
    if dtype != jnp.float32:
      raise ConfigError(f"the {cfg.name} prior computes in float32 only; got "
                        f"dtype={jnp.dtype(dtype).name}")
    if cfg.num_codes < 2:
      raise ConfigError(f"model.num_codes (K) must be at least 2, got {cfg.num_codes}")
    self.grid_shape = tuple(grid_shape[:2])
    self.num_codes = int(cfg.num_codes)
    self.num_classes = int(cfg.num_classes) if cfg.class_conditional else 0
    self.image_dims = int(cfg.image_dims)  # pixels x channels of the images the codes stand for
    # The rate at which training replaced the class by "no class" (classifier-free guidance
    # needs it above 0).
    self.label_dropout = float(cfg.get("label_dropout", 0.0)) if self.num_classes else 0.0

  @property
  def num_positions(self) -> int:
    return math.prod(self.grid_shape)

  @property
  def null_class(self) -> int:
    """The label of "no class" (num_classes), which label dropout trains and guidance reads."""
    return self.num_classes

  def drop_labels(self, labels, batch: int, key: jax.Array):
    """The labels a training step reads: each replaced by null_class at label_dropout."""
    labels = self.labels_or_default(labels, batch)
    if not self.label_dropout:
      return labels
    dropped = jax.random.bernoulli(key, self.label_dropout, labels.shape)
    return jnp.where(dropped, self.null_class, labels)

  def guidance_labels(self, labels, num: int, guidance: float):
    """The labels of the batch a guided sampler runs: the classes, and with guidance != 1 the same
    batch again with "no class" ([2 num]); None for an unconditional prior."""
    labels = self.labels_or_default(labels, num)
    if guidance == 1.0:
      return labels
    if not self.num_classes:
      raise SampleError(f"guidance {guidance} needs a class-conditional prior")
    return jnp.concatenate([labels, jnp.full_like(labels, self.null_class)])

  def labels_or_default(self, labels, batch: int):
    """The labels a class-conditional prior reads (class 0 where none are given); None for an
    unconditional one."""
    if not self.num_classes:
      return None
    return jnp.zeros((batch,), jnp.int32) if labels is None else labels

  def code_nll(self, codes: jax.Array, labels=None) -> jax.Array:
    """-log p(codes | label) in nats: [B, h, w] int codes, [B] labels -> [B]."""
    raise NotImplementedError

  def sample(self, key: jax.Array, num: int, labels=None, temperature: float = 1.0,
             **options) -> jax.Array:
    """`num` code grids [num, h, w] int32, drawn at softmax temperature `temperature`, of
    class `labels` [num] (class-conditional priors), with the prior's SAMPLE_OPTIONS."""
    raise NotImplementedError

  def sequential_calls(self, how: str = "compiled_loop", **options) -> int:
    """How many model calls one image's sampling makes one after another (its latency on an
    accelerator): one per position for an autoregressive prior."""
    del how, options
    return self.num_positions

  def loss_nats(self, codes: jax.Array, labels, key: jax.Array, training: bool) -> jax.Array:
    """[B] nats that training minimises (per grid): -log p(codes | labels) by default."""
    del key, training
    return self.code_nll(codes, labels)

  def __call__(self, codes: jax.Array, key: jax.Array, labels=None,
               training: bool = False) -> ModelOutput:
    nats = self.loss_nats(codes, labels, key, training)                  # [B] per grid
    positions = self.num_positions
    return ModelOutput(
        loss=jnp.mean(nats) / positions,
        per_example={"loss": nats / positions,
                     "bits_per_code": nats / (positions * math.log(2.0)),
                     "bits_per_image_dim": nats / (self.image_dims * math.log(2.0))})
