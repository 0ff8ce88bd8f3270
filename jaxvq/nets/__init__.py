"""Encoders and decoders: architecture only (no losses, no quantization).

  layers.py  Conv and the 2x upsampler (a 4x4 stride-2 transposed convolution)
  conv.py    the VQ-VAE paper's residual conv encoder and decoder, and their latent-vector form
  mlp.py     fully connected networks

`build_encoder_decoder` picks the pair a model config names; the config keys
of the networks are defined here once (CONV_FIELDS, and for the AE and VAE
ARCHITECTURE_FIELDS) and included in each model's section.
"""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxvq.config.schema import Field
from jaxvq.errors import ConfigError
from jaxvq.nets.conv import ConvDecoder, ConvEncoder, ConvToVector, VectorToConv
from jaxvq.nets.mlp import MLP

ARCHITECTURES = ("conv", "conv_vector", "mlp")

CONV_FIELDS = {
    "hidden": Field(128, "channels of the conv nets (the first stride-2 layer has half)",
                    minimum=2),
    "residual_hidden": Field(32, "channels inside each residual block", minimum=1),
    "num_residual_blocks": Field(2, "residual blocks in the encoder and in the decoder",
                                 minimum=0),
}

ARCHITECTURE_FIELDS = {
    "architecture": Field("conv", "conv: a latent grid of H/4 x W/4; conv_vector: the same "
                          "nets with the grid flattened to a latent vector; mlp: fully "
                          "connected nets", choices=ARCHITECTURES),
    **CONV_FIELDS,
    "mlp_hidden": Field((512, 256), "hidden layer sizes of the mlp architecture", minimum=1),
}


def build_encoder_decoder(cfg, image_shape, *, encoder_out: int, decoder_in: int,
                          dtype=jnp.float32, rngs: nnx.Rngs):
  """The encoder/decoder pair named by `cfg.architecture` (default "conv").

  Args:
    cfg: the model's config section (CONV_FIELDS, and ARCHITECTURE_FIELDS where it has them).
    image_shape: (H, W, C) of the images.
    encoder_out: channels of the encoder's output (e.g. D, or 2 x the latent size for a VAE).
    decoder_in: channels of the decoder's input.

  Returns:
    (encoder, decoder, latent_shape): the encoder maps [B, H, W, C] to
    [B, *latent_shape, encoder_out], the decoder [B, *latent_shape, decoder_in]
    to [B, H, W, C]; latent_shape is (H/4, W/4) for "conv" and () for a latent vector.
  """
  height, width, channels = image_shape
  architecture = cfg.get("architecture", "conv")
  if architecture in ("conv", "conv_vector"):
    if height % 4 or width % 4:
      raise ConfigError(
          f"the conv network halves the image twice, so its height and width must be "
          f"multiples of 4; got {height}x{width} (set config.image_size to e.g. 28 or 32)")
    conv_args = (cfg.hidden, cfg.residual_hidden, cfg.num_residual_blocks)
    grid = (height // 4, width // 4)
    if architecture == "conv":
      encoder = ConvEncoder(channels, *conv_args, encoder_out, dtype=dtype, rngs=rngs)
      decoder = ConvDecoder(decoder_in, *conv_args, channels, dtype=dtype, rngs=rngs)
      return encoder, decoder, grid
    grid_shape = grid + (cfg.hidden,)
    encoder = ConvToVector(
        ConvEncoder(channels, *conv_args, cfg.hidden, dtype=dtype, rngs=rngs),
        int(np.prod(grid_shape)), encoder_out, dtype=dtype, rngs=rngs)
    decoder = VectorToConv(
        decoder_in, grid_shape,
        ConvDecoder(cfg.hidden, *conv_args, channels, dtype=dtype, rngs=rngs), dtype=dtype,
        rngs=rngs)
    return encoder, decoder, ()
  if architecture == "mlp":
    hidden = tuple(cfg.mlp_hidden)
    encoder = MLP(height * width * channels, hidden, (encoder_out,), dtype=dtype, rngs=rngs)
    decoder = MLP(decoder_in, hidden[::-1], image_shape, dtype=dtype, rngs=rngs)
    return encoder, decoder, ()
  raise ConfigError(f"unknown model.architecture {architecture!r}: use one of {ARCHITECTURES}")
