"""Autoencoder: encoder -> z -> decoder, trained on mean squared error."""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from jaxvq.models.base import ImageModel, ModelOutput, per_example_mean
from jaxvq.nets import build_encoder_decoder


class Autoencoder(ImageModel):

  def __init__(self, cfg, image_shape, *, data_variance: float, dtype=jnp.float32,
               rngs: nnx.Rngs):
    self.encoder, self.decoder, _ = build_encoder_decoder(
        cfg, image_shape, encoder_out=cfg.latent_dim, decoder_in=cfg.latent_dim,
        dtype=dtype, rngs=rngs)
    self.data_variance = data_variance

  def decode(self, z: jax.Array) -> jax.Array:
    return self.decoder(z) + 0.5

  def __call__(self, x: jax.Array, key: jax.Array, labels=None) -> ModelOutput:
    del key, labels  # the autoencoder is deterministic
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
