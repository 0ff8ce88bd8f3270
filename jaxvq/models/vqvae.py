"""VQ-VAE (van den Oord et al. 2017, "Neural Discrete Representation Learning"): a conv
encoder, a quantizer, a conv decoder.

loss = reconstruction + the quantizer's loss, where the reconstruction term is
the MSE, divided by the variance of the training data when
`normalize_reconstruction` is set (DeepMind's recipe), or with
`likelihood="discretized_gaussian"` the negative log-likelihood of the 8-bit
pixels under a Gaussian discretized to the 256 levels (the VAE's, in
jaxvq/ops/likelihoods.py) with a learned log-scale per channel, in nats per
dimension; its test metrics then hold the decoder's -log p(x | z_q) per image
(`reconstruction_nll`, nats) and in bits per dimension, the decoder's share of
the paper's bound on -log p(x) (section 4.1; jaxvq/likelihood_bound.py adds the prior's).
The quantizer's loss is,
for the paper's nearest-code VQ, alpha * ||sg(z_e) - z_q||^2 + beta *
||z_e - sg(z_q)||^2. `config.model.quantizer.name` picks the quantizer
(jaxvq/models/quantizers): vq (with EMA, k-means, dead-code restarts, the
rotation trick, an entropy loss), fsq, lfq or residual_vq.

VQGAN's losses (Esser et al. 2021; jaxvq/models/adversarial.py) are optional: an L1
reconstruction term (`likelihood="l1"`), a perceptual loss in the features of a fixed network
(`perceptual_weight`, jaxvq/models/perceptual.py) and a PatchGAN discriminator with the
adaptive weight (`adversarial_weight`); all off, the model is the paper's.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import ml_collections
from flax import nnx

from jaxvq import schema
from jaxvq.schema import Field
from jaxvq.models import perceptual
from jaxvq.models.adversarial import (ADVERSARIAL_FIELDS, PERCEPTUAL_FIELDS, Adversarial,
                                      linearized, value_and_gradient_of)
from jaxvq.models.base import Model, ModelOutput
from jaxvq.models.quantizers import CodebookStatistic, quantizer_class
from jaxvq.models.quantizers.vq import VQ_FIELDS
from jaxvq.nets import CONV_FIELDS, build_encoder_decoder
from jaxvq.ops import likelihoods
from jaxvq.ops.reduce import per_example_mean

__all__ = ["VQVAE", "CodebookStatistic", "VQ_FIELDS"]

LIKELIHOODS = ("mse", "discretized_gaussian", "l1")


class VQVAE(Model):
  """x [B, H, W, C] -> z_e [B, h, w, D] -> codes [B, h, w] (residual VQ: [B, h, w, Q]) -> x_hat.

  h, w = H/f, W/f (f = config downsample, 4 by default): a 28x28 image is a 7x7 grid of
  indices into K codes.
  """

  CONFIG = {
      "name": Field("vqvae", "the model", choices=("vqvae",)),
      **CONV_FIELDS,
      "embedding_dim": Field(64, "D, the channels of the encoder's output", minimum=1),
      "normalize_reconstruction": Field(True, "divide the MSE by the data variance (the "
                                        "reconstruction term of the loss)"),
      "likelihood": Field("mse", "the reconstruction term: mse (normalized or not, above), or "
                          "discretized_gaussian: -log p(x | z_q) of the 8-bit pixels in nats "
                          "per dimension, a Gaussian discretized to the 256 levels with a "
                          "learned log-scale per channel; or l1: the mean absolute error per "
                          "pixel (taming's VQGAN)", choices=LIKELIHOODS),
      **PERCEPTUAL_FIELDS,
      **ADVERSARIAL_FIELDS,
      "quantizer": VQ_FIELDS,
  }
  SUMMARY_METRICS = ("normalized_mse", "bits_per_dim", "perceptual", "perplexity",
                     "codebook_usage", "g_loss", "d_loss")

  @classmethod
  def config_section(cls, model_config) -> dict:
    name = model_config.get("quantizer", {}).get("name", "vq")
    return {**cls.CONFIG, "quantizer": quantizer_class(name).CONFIG}

  @classmethod
  def config_problems(cls, config) -> list:
    """The perceptual network's name; a discriminator that would never act; a perceptual
    network that would also compute the run's FID."""
    model, lines = config["model"], []
    network = model.get("perceptual_network", perceptual.RANDOM)
    if model.get("perceptual_weight", 0.0) > 0:
      problem = perceptual.name_problem(network)
      lines += [problem] if problem else []
      workdir = perceptual.features_workdir(network)
      if workdir and config.get("quality_features") and perceptual.same_workdir(
          workdir, config["quality_features"]):
        lines.append(f"config.model.perceptual_network={network!r} is also "
                     f"config.quality_features: the run's FID would be measured by the "
                     f"network it was trained against; give quality_features another feature "
                     f"network (or use perceptual_network='random')")
    if model.get("adversarial_weight", 0.0) > 0 and (
        model.get("disc_start_step", 0) >= config["num_train_steps"]):
      lines.append(f"config.model.disc_start_step={model['disc_start_step']} is not before "
                   f"the run's end (config.num_train_steps={config['num_train_steps']}): the "
                   f"discriminator would never act; start it earlier, or set "
                   f"adversarial_weight=0")
    return lines

  @classmethod
  def default_config(cls, quantizer: str = "vq") -> ml_collections.ConfigDict:
    """The section with its defaults, for the quantizer `quantizer`."""
    return schema.defaults({**cls.CONFIG, "quantizer": quantizer_class(quantizer).CONFIG})

  def __init__(self, cfg, image_shape, *, data_variance: float, dtype=jnp.float32,
               rngs: nnx.Rngs):
    self.encoder, self.decoder, self.grid_shape = build_encoder_decoder(
        cfg, image_shape, encoder_out=cfg.embedding_dim, decoder_in=cfg.embedding_dim,
        dtype=dtype, rngs=rngs)
    self.quantizer = quantizer_class(cfg.quantizer.name)(cfg.quantizer, cfg.embedding_dim,
                                                         rngs=rngs)
    self.num_codes = self.quantizer.num_codes
    self.index_shape = tuple(self.quantizer.index_shape)
    self.data_variance = data_variance
    self.normalize_reconstruction = cfg.normalize_reconstruction
    self.likelihood = cfg.get("likelihood", "mse")
    self.num_dims = math.prod(image_shape)
    if self.likelihood == "discretized_gaussian":
      self.log_scale = nnx.Param(jnp.full((image_shape[-1],), -2.0))  # log sigma, per channel
    self.image_shape = tuple(image_shape)
    self.perceptual_weight = cfg.get("perceptual_weight", 0.0)
    self.perceptual_network = cfg.get("perceptual_network", perceptual.RANDOM)
    if self.perceptual_weight:
      # A network of other weights than random ones is loaded by `load_pretrained`.
      self.perceptual = nnx.data(perceptual.PerceptualNetwork(perceptual.RandomFeatures(
          image_shape, cfg.perceptual_widths, cfg.perceptual_seed))
                                 if self.perceptual_network == perceptual.RANDOM else None)
    if cfg.get("adversarial_weight", 0.0):
      self.adversarial = Adversarial(cfg, image_shape, dtype=dtype, rngs=rngs)

  def load_pretrained(self, load_trained) -> None:
    """The perceptual network features:DIR, lpips or a registered one (jaxvq.models.perceptual)."""
    if self.perceptual_weight and self.perceptual_network != perceptual.RANDOM:
      self.perceptual = perceptual.load(self.perceptual_network, self.image_shape, load_trained)

  # -------------------------------------------------------------- tokenizer

  def encode_to_indices(self, x: jax.Array) -> jax.Array:
    """The code of each latent position.

    Args:
      x: images [B, H, W, C] in [0, 1].

    Returns:
      [B, h, w] int32 indices into the K codes (h, w = H/f, W/f); residual VQ:
      [B, h, w, Q], one per stage.
    """
    return self.quantizer.encode(self.encoder(x))

  def decode_from_indices(self, indices: jax.Array) -> jax.Array:
    """Images from a grid of codes (a tokenizer's decode, as MaskGIT's).

    Args:
      indices: [B, h, w] int code indices in [0, K) (residual VQ: [B, h, w, Q]).

    Returns:
      [B, H, W, C] images in [0, 1].
    """
    return jnp.clip(self.decoder(self.quantizer.decode(indices)) + 0.5, 0.0, 1.0)

  # -------------------------------------------------------------- likelihood

  def reconstruction_nll(self, x: jax.Array, mean: jax.Array) -> jax.Array:
    """-log p(x | z_q) in nats, [B], of images x [B, H, W, C] on the 256 levels given the
    decoder's mean [B, H, W, C] (likelihood="discretized_gaussian" only)."""
    log_scale = jnp.broadcast_to(self.log_scale[...], x.shape)
    return -likelihoods.discretized_gaussian_log_prob(x, mean, log_scale)

  def decoder_nll(self, x: jax.Array, indices: jax.Array) -> jax.Array:
    """-log p(x | codes) in nats, [B]: the decoder's share of the bound on -log p(x)."""
    return self.reconstruction_nll(x, self.decoder(self.quantizer.decode(indices)) + 0.5)

  @property
  def code_depth(self) -> int:
    """Codes per latent position: 1, or Q for residual VQ (its indices [B, h, w, Q])."""
    return self.index_shape[0] if self.index_shape else 1

  def code_counts(self, out: ModelOutput, weights: jax.Array) -> jax.Array:
    """How often each code is used in the batch of `out`: [S, K] (S = 1, or one row per
    stage); the evaluation's code usage and perplexity (jaxvq.models.base.CodeUsage)."""
    return self.quantizer.code_counts(out.internals.indices, weights)

  # -------------------------------------------------------------- training

  def reconstruction_terms(self, x: jax.Array, x_hat: jax.Array) -> tuple:
    """(the reconstruction term [B], the per-example metrics): the MSE (normalized or not),
    the NLL per dimension, or the L1 error, of images x given the decoder's output x_hat."""
    likelihood = self.likelihood == "discretized_gaussian"
    # A likelihood's mean may leave [0, 1] (the end bins reach +-inf): its MSE is the image's.
    mse = per_example_mean(((jnp.clip(x_hat, 0.0, 1.0) if likelihood else x_hat) - x) ** 2)
    normalized_mse = mse / self.data_variance
    metrics = {"mse": mse, "normalized_mse": normalized_mse}
    if likelihood:
      nll = self.reconstruction_nll(x, x_hat)                             # [B] nats
      reconstruction = nll / self.num_dims
      metrics.update(reconstruction_nll=nll,
                     bits_per_dim=likelihoods.nats_to_bits_per_dim(nll, self.num_dims))
    elif self.likelihood == "l1":
      reconstruction = metrics["l1"] = per_example_mean(jnp.abs(x_hat - x))
    else:
      reconstruction = normalized_mse if self.normalize_reconstruction else mse
    return reconstruction, metrics

  def __call__(self, x: jax.Array, key: jax.Array, labels=None, training: bool = False):
    del labels  # unconditional
    q = self.quantizer(self.encoder(x), key, training)
    adversarial = training and hasattr(self, "adversarial")
    if adversarial:   # the last layer's input, for the adaptive weight
      hidden = self.decoder.hidden(q.quantized)
      x_hat = self.decoder.output_layer(hidden).astype(jnp.float32) + 0.5
    else:
      x_hat = self.decoder(q.quantized) + 0.5                     # [B, H, W, C]
    reconstruction, metrics = self.reconstruction_terms(x, x_hat)
    per_example = {k: v for k, v in q.per_example.items() if k != "loss"}
    loss = jnp.mean(reconstruction) + q.loss
    per_example_loss = reconstruction + q.per_example["loss"]
    batch_metrics = dict(q.batch_metrics)
    grad_perceptual = 0.0
    if self.perceptual_weight:
      if self.perceptual is None:
        raise ValueError(f"the perceptual network {self.perceptual_network!r} is loaded by "
                         f"jaxvq.train.experiment.setup (Model.load_pretrained); this model "
                         f"was built without it")
      if training:   # its value and gradient from one backward pass through the network
        def mean_distance(images):
          distance = self.perceptual(images, x)
          return jnp.mean(distance), distance
        mean, grad_perceptual, distance = value_and_gradient_of(mean_distance, x_hat)
        loss = loss + self.perceptual_weight * linearized(mean, grad_perceptual, x_hat)
      else:
        distance = self.perceptual(x_hat, x)
        loss = loss + self.perceptual_weight * jnp.mean(distance)
      per_example_loss = per_example_loss + self.perceptual_weight * distance
      metrics["perceptual"] = distance
    if adversarial:
      adversarial_loss, gan_metrics = self.adversarial.loss(
          x, x_hat, self._grad_reconstruction(x, x_hat, grad_perceptual),
          self._last_layer_pullback(hidden))
      loss = loss + adversarial_loss
      batch_metrics.update(gan_metrics)
    return ModelOutput(
        loss=loss,
        per_example={"loss": per_example_loss, **metrics, **per_example},
        reconstruction=jnp.clip(x_hat, 0.0, 1.0),
        batch_metrics=batch_metrics,
        internals=q)

  def _grad_reconstruction(self, x, x_hat, grad_perceptual) -> jax.Array:
    """The gradient of L_rec = mean(reconstruction + perceptual_weight x perceptual) with
    respect to x_hat (the perceptual part's already computed)."""
    if not self.adversarial.adaptive:
      return jnp.zeros_like(x_hat)
    grad = jax.grad(lambda images: jnp.mean(self.reconstruction_terms(x, images)[0]))(
        jax.lax.stop_gradient(x_hat))
    return grad + self.perceptual_weight * grad_perceptual

  def _last_layer_pullback(self, hidden: jax.Array):
    """g -> the gradient with respect to the decoder's last kernel of a loss whose gradient
    with respect to x_hat is g, at the last layer's input `hidden` (held)."""
    graphdef, state = nnx.split(self.decoder.output_layer)
    weights = jax.lax.stop_gradient(nnx.to_pure_dict(state))
    hidden = jax.lax.stop_gradient(hidden)

    def output(kernel):
      return nnx.merge(graphdef, {**weights, "kernel": kernel})(hidden).astype(jnp.float32)

    _, pullback = jax.vjp(output, weights["kernel"])
    return lambda g: pullback(g)[0]

  def update_after_step(self, out: ModelOutput, key: jax.Array, step: jax.Array) -> dict:
    if hasattr(self, "adversarial"):
      self.adversarial.update_after_step(out.batch_metrics, step)
    return self.quantizer.update_after_step(out.internals, key, step)

  @property
  def num_initialization_batches(self) -> int:
    return self.quantizer.num_initialization_batches

  def initialize_from_data(self, batches: jax.Array, key: jax.Array) -> None:
    """The quantizer's initialisation (k-means) from the encoder outputs of `batches`
    [n, B, H, W, C]."""
    if self.num_initialization_batches:
      z_e = self.encoder(batches.reshape((-1,) + batches.shape[2:]))
      self.quantizer.initialize_from_data(z_e, key, batches.shape[0])
