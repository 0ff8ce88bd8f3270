"""VQ-VAE (van den Oord et al., 2017): a conv encoder, a codebook, a conv decoder.

loss = reconstruction + alpha * ||sg(z_e) - z_q||^2 + beta * ||z_e - sg(z_q)||^2,
where the reconstruction term is the MSE, divided by the variance of the
training data when `normalize_reconstruction` is set (DeepMind's recipe).
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx

from jaxvq import quantizer
from jaxvq.models.base import ModelOutput, per_example_mean
from jaxvq.nets import build_encoder_decoder


class VQVAE(nnx.Module):

  def __init__(self, cfg, image_shape, *, data_variance: float, dtype=jnp.float32,
               rngs: nnx.Rngs):
    if cfg.num_codes < 2:
      raise ValueError(f"model.num_codes (K) must be at least 2, got {cfg.num_codes}")
    if cfg.embedding_dim < 1:
      raise ValueError(f"model.embedding_dim (D) must be at least 1, got {cfg.embedding_dim}")
    self.encoder, self.decoder, self.grid_shape = build_encoder_decoder(
        cfg, image_shape, encoder_out=cfg.embedding_dim, decoder_in=cfg.embedding_dim,
        dtype=dtype, rngs=rngs)
    limit = math.sqrt(3.0 / cfg.embedding_dim)  # Sonnet's uniform variance scaling
    self.codebook = nnx.Param(jax.random.uniform(
        rngs.params(), (cfg.num_codes, cfg.embedding_dim), minval=-limit, maxval=limit))
    self.num_codes = cfg.num_codes
    self.commitment_cost = cfg.commitment_cost
    self.codebook_cost = cfg.codebook_cost
    self.data_variance = data_variance
    self.normalize_reconstruction = cfg.normalize_reconstruction

  def encode_to_indices(self, x: jax.Array) -> jax.Array:
    """[B, H, W, C] in [0, 1] -> [B, h, w] int32 code indices."""
    return quantizer.nearest_code(self.encoder(x), self.codebook[...])

  def decode_from_indices(self, indices: jax.Array) -> jax.Array:
    """[B, h, w] int code indices -> [B, H, W, C] images in [0, 1]."""
    z_q = quantizer.lookup(indices, self.codebook[...])
    return jnp.clip(self.decoder(z_q) + 0.5, 0.0, 1.0)

  def __call__(self, x: jax.Array, key: jax.Array) -> ModelOutput:
    del key  # the VQ-VAE is deterministic
    z_e = self.encoder(x)                                        # [B, h, w, D]
    q = quantizer.quantize(z_e, self.codebook[...], commitment_cost=self.commitment_cost,
                           codebook_cost=self.codebook_cost)
    x_hat = self.decoder(q.quantized) + 0.5                      # [B, H, W, C]
    mse = per_example_mean((x_hat - x) ** 2)
    normalized_mse = mse / self.data_variance
    reconstruction = normalized_mse if self.normalize_reconstruction else mse
    # Value of both the codebook and the commitment loss, per example.
    vq_distance = jax.lax.stop_gradient(per_example_mean((z_e - q.quantized) ** 2))
    counts = quantizer.code_counts(q.indices, self.num_codes)
    return ModelOutput(
        loss=jnp.mean(reconstruction) + q.loss,
        per_example={
            "loss": reconstruction + (self.codebook_cost + self.commitment_cost) * vq_distance,
            "mse": mse, "normalized_mse": normalized_mse,
            "codebook_loss": vq_distance, "commitment_loss": vq_distance},
        reconstruction=jnp.clip(x_hat, 0.0, 1.0),
        code_indices=q.indices,
        batch_metrics={"perplexity": q.perplexity,
                       "codebook_usage": quantizer.usage_from_counts(counts)})

  def generate(self, key, num, reference):
    """Generation needs a prior over codes (the PixelCNN): none here."""
    return None
