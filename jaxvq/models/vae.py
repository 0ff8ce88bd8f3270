"""Variational autoencoder with a diagonal Gaussian posterior and a N(0, I) prior
(Kingma & Welling 2014, "Auto-Encoding Variational Bayes").

loss = -ELBO = -E_q[log p(x|z)] + KL(q(z|x) || N(0, I)), one reparameterized
sample z = mu + sigma * eps drawn from the step's key. p(x|z) is Bernoulli for
binarized images and, for 8-bit images, a Gaussian discretized to the 256
pixel levels (so that -ELBO and bits/dim bound the discrete NLL). Test NLL is estimated by
importance weighting with k posterior samples (Burda et al. 2016, "Importance Weighted
Autoencoders").
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxvq.schema import Field
from jaxvq.models.base import Model, ModelOutput
from jaxvq.nets import ARCHITECTURE_FIELDS, build_encoder_decoder
from jaxvq.ops import likelihoods

LIKELIHOODS = ("bernoulli", "gaussian")


class VAE(Model):
  """x [B, H, W, C] -> q(z|x) = N(mean, diag exp(logvar)), z [B, *latent_shape] -> p(x|z).

  latent_shape is (latent_dim,) for a latent vector (conv_vector, mlp) and
  (H/f, W/f, latent_dim) for the conv grid (f = config downsample).
  """

  CONFIG = {
      "name": Field("vae", "the model", choices=("vae",)),
      **ARCHITECTURE_FIELDS,
      "latent_dim": Field(16, "channels of the latent grid (conv) or the latent vector's size",
                          minimum=1),
      "likelihood": Field("gaussian", "bernoulli (binarized data) or gaussian (8-bit data, "
                          "discretized to the 256 levels)", choices=LIKELIHOODS),
      "importance_samples": Field(0, "k for the final test NLL estimate (0: skip it)",
                                  minimum=0),
      "importance_examples": Field(0, "the final estimate's test images, the first this many "
                                   "(0: all)", minimum=0),
  }
  SUMMARY_METRICS = ("neg_elbo", "kl", "nll_iwae", "bits_per_dim_iwae")

  def __init__(self, cfg, image_shape, *, data_variance: float, dtype=jnp.float32,
               rngs: nnx.Rngs):
    del data_variance  # the likelihood sets the scale of the loss
    self.encoder, self.decoder, latent_grid = build_encoder_decoder(
        cfg, image_shape, encoder_out=2 * cfg.latent_dim, decoder_in=cfg.latent_dim,
        dtype=dtype, rngs=rngs)
    self.latent_shape = tuple(latent_grid) + (cfg.latent_dim,)
    self.likelihood = cfg.likelihood
    self.num_dims = int(np.prod(image_shape))
    if self.likelihood == "gaussian":
      self.log_scale = nnx.Param(jnp.full((), -2.0))  # log sigma of p(x|z), learned
    self.importance_samples = cfg.importance_samples
    self.importance_examples = cfg.importance_examples

  def posterior(self, x: jax.Array):
    """mean, log-variance of q(z|x): [B, H, W, C] -> 2 x [B, *latent_shape]."""
    mean, logvar = jnp.split(self.encoder(x), 2, axis=-1)
    return mean, logvar

  def log_likelihood(self, x: jax.Array, decoded: jax.Array) -> jax.Array:
    """log p(x|z) in nats, [B]; `decoded` is the decoder's raw output."""
    if self.likelihood == "bernoulli":
      return likelihoods.bernoulli_log_prob(x, decoded)
    log_scale = jnp.broadcast_to(self.log_scale[...], x.shape)
    return likelihoods.discretized_gaussian_log_prob(x, decoded + 0.5, log_scale)

  def decode_mean(self, z: jax.Array) -> jax.Array:
    """E[x|z] in [0, 1]."""
    decoded = self.decoder(z)
    if self.likelihood == "bernoulli":
      return jax.nn.sigmoid(decoded)
    return jnp.clip(decoded + 0.5, 0.0, 1.0)

  def bits_per_dim(self, nats: jax.Array) -> jax.Array:
    return likelihoods.nats_to_bits_per_dim(nats, self.num_dims)

  def __call__(self, x: jax.Array, key: jax.Array, labels=None,
               training: bool = False) -> ModelOutput:
    del labels, training  # unconditional; the same in training and evaluation
    mean, logvar = self.posterior(x)
    z = likelihoods.reparameterize(key, mean, logvar)
    decoded = self.decoder(z)
    reconstruction_nll = -self.log_likelihood(x, decoded)
    kl = likelihoods.kl_to_standard_normal(mean, logvar)
    neg_elbo = reconstruction_nll + kl
    return ModelOutput(
        loss=jnp.mean(neg_elbo),
        per_example={"loss": neg_elbo, "neg_elbo": neg_elbo,
                     "reconstruction_nll": reconstruction_nll, "kl": kl,
                     "bits_per_dim": self.bits_per_dim(neg_elbo)},
        reconstruction=self.decode_mean(z))

  def importance_weighted_nll(self, x: jax.Array, key: jax.Array, num_samples: int,
                              chunk: int = 50) -> jax.Array:
    """-log p(x) estimated with `num_samples` importance samples from q(z|x): [B] nats."""
    mean, logvar = self.posterior(x)
    zeros = jnp.zeros_like(mean)

    def log_weight(sample_key):
      z = likelihoods.reparameterize(sample_key, mean, logvar)
      return (self.log_likelihood(x, self.decoder(z))
              + likelihoods.diagonal_gaussian_log_prob(z, zeros, zeros)
              - likelihoods.diagonal_gaussian_log_prob(z, mean, logvar))

    keys = jax.random.split(key, num_samples)
    log_weights = jax.lax.map(log_weight, keys, batch_size=min(chunk, num_samples))  # [k, B]
    return -likelihoods.importance_weighted_log_likelihood(log_weights)

  def final_metrics_examples(self, num_test: int) -> int:
    if not self.importance_samples:
      return 0
    return min(num_test, self.importance_examples or num_test)

  def final_metrics(self, x: jax.Array, key: jax.Array) -> dict:
    """The importance-weighted NLL estimate, in nats and bits per dimension."""
    nll = self.importance_weighted_nll(x, key, self.importance_samples)
    return {"nll_iwae": nll, "bits_per_dim_iwae": self.bits_per_dim(nll)}

  def generate(self, key: jax.Array, num: int, reference: jax.Array) -> jax.Array:
    """Decodes z ~ N(0, I); `reference` is unused (the prior needs no data)."""
    del reference
    return self.decode_mean(jax.random.normal(key, (num,) + self.latent_shape))
