"""Autoencoder: encoder -> z -> decoder, trained on mean squared error."""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from jaxvq.schema import Field
from jaxvq.models.base import Model, ModelOutput
from jaxvq.nets import ARCHITECTURE_FIELDS, build_encoder_decoder
from jaxvq.ops.reduce import per_example_mean


class Autoencoder(Model):
  """x [B, H, W, C] in [0, 1] -> z [B, *latent_shape, latent_dim] -> x_hat [B, H, W, C].

  With the conv nets on 28x28 images and latent_dim 4, z is [B, 7, 7, 4].
  """

  CONFIG = {
      "name": Field("autoencoder", "the model", choices=("autoencoder",)),
      **ARCHITECTURE_FIELDS,
      "latent_dim": Field(16, "channels of the latent grid (conv) or the latent vector's size",
                          minimum=1),
  }
  SUMMARY_METRICS = ("normalized_mse",)

  def __init__(self, cfg, image_shape, *, data_variance: float, dtype=jnp.float32,
               rngs: nnx.Rngs):
    self.encoder, self.decoder, _ = build_encoder_decoder(
        cfg, image_shape, encoder_out=cfg.latent_dim, decoder_in=cfg.latent_dim,
        dtype=dtype, rngs=rngs)
    self.data_variance = data_variance

  def decode(self, z: jax.Array) -> jax.Array:
    return self.decoder(z) + 0.5

  def __call__(self, x: jax.Array, key: jax.Array, labels=None,
               training: bool = False) -> ModelOutput:
    del key, labels, training  # the autoencoder is deterministic
    x_hat = self.decode(self.encoder(x))
    mse = per_example_mean((x_hat - x) ** 2)
    return ModelOutput(
        loss=jnp.mean(mse),
        per_example={"loss": mse, "mse": mse, "normalized_mse": mse / self.data_variance},
        reconstruction=jnp.clip(x_hat, 0.0, 1.0))

  def generate(self, key: jax.Array, num: int, reference: jax.Array) -> jax.Array:
    """An AE has no prior: decodes z ~ N(mean, std^2) fitted to the reference batch's codes."""
    z = self.encoder(reference)
    mean, std = jnp.mean(z, axis=0), jnp.std(z, axis=0)
    z = mean + std * jax.random.normal(key, (num,) + z.shape[1:])
    return jnp.clip(self.decode(z), 0.0, 1.0)
