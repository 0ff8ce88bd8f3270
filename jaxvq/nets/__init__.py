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

from jaxvq.schema import Field
from jaxvq.errors import ConfigError
from jaxvq.nets.conv import ConvDecoder, ConvEncoder, ConvToVector, VectorToConv
from jaxvq.nets.mlp import MLP

ARCHITECTURES = ("conv", "conv_vector", "mlp")
DOWNSAMPLE_FACTORS = (4, 8, 16)

CONV_FIELDS = {
    "hidden": Field(128, "channels of the conv nets (the first stride-2 layer has half)",
                    minimum=2),
    "residual_hidden": Field(32, "channels inside each residual block", minimum=1),
    "num_residual_blocks": Field(2, "residual blocks in the encoder and in the decoder",
                                 minimum=0),
    "downsample": Field(4, "f, the image's height and width over the latent grid's: 2^S "
                        "for S stride-2 stages", choices=DOWNSAMPLE_FACTORS),
    "channel_multipliers": Field((1, 1), "one per stride-2 stage, image to grid: the stage "
                                 "has hidden x this channels (the first half of it); "
                                 "log2(downsample) of them, as taming's ch_mult", minimum=1),
}

ARCHITECTURE_FIELDS = {
    "architecture": Field("conv", "conv: a latent grid of H/f x W/f; conv_vector: the same "
                          "nets with the grid flattened to a latent vector; mlp: fully "
                          "connected nets", choices=ARCHITECTURES),
    **CONV_FIELDS,
    "mlp_hidden": Field((512, 256), "hidden layer sizes of the mlp architecture", minimum=1),
}


def conv_stages(cfg) -> tuple:
  """(f, channel multipliers) of a model section's conv nets, checked against each other.

  Raises:
    ConfigError: when there is not one multiplier per stride-2 stage.
  """
  factor = cfg.get("downsample", 4)
  multipliers = tuple(cfg.get("channel_multipliers", (1, 1)))
  stages = factor.bit_length() - 1
  if len(multipliers) != stages:
    raise ConfigError(
        f"config.model.downsample={factor} has {stages} stride-2 stages, so "
        f"config.model.channel_multipliers needs {stages} entries, one per stage; got "
        f"{multipliers} (e.g. --config.model.channel_multipliers=\"{(1,) * stages}\")")
  return factor, multipliers


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
    to [B, H, W, C]; latent_shape is (H/f, W/f) for "conv" (f = cfg.downsample, 4 where
    the section has none) and () for a latent vector.
  """
  height, width, channels = image_shape
  architecture = cfg.get("architecture", "conv")
  if architecture in ("conv", "conv_vector"):
    factor, multipliers = conv_stages(cfg)
    if height % factor or width % factor:
      raise ConfigError(
          f"the conv network halves the image {len(multipliers)} times "
          f"(config.model.downsample={factor}), so its height and width must be multiples "
          f"of {factor}; got {height}x{width} (set config.image_size to a multiple of "
          f"{factor}, or a smaller downsample)")
    conv_args = (cfg.hidden, cfg.residual_hidden, cfg.num_residual_blocks)
    conv_kwargs = dict(channel_multipliers=multipliers, dtype=dtype, rngs=rngs)
    grid = (height // factor, width // factor)
    if architecture == "conv":
      encoder = ConvEncoder(channels, *conv_args, encoder_out, **conv_kwargs)
      decoder = ConvDecoder(decoder_in, *conv_args, channels, **conv_kwargs)
      return encoder, decoder, grid
    grid_shape = grid + (cfg.hidden,)
    encoder = ConvToVector(
        ConvEncoder(channels, *conv_args, cfg.hidden, **conv_kwargs),
        int(np.prod(grid_shape)), encoder_out, dtype=dtype, rngs=rngs)
    decoder = VectorToConv(
        decoder_in, grid_shape, ConvDecoder(cfg.hidden, *conv_args, channels, **conv_kwargs),
        dtype=dtype, rngs=rngs)
    return encoder, decoder, ()
  if architecture == "mlp":
    hidden = tuple(cfg.mlp_hidden)
    encoder = MLP(height * width * channels, hidden, (encoder_out,), dtype=dtype, rngs=rngs)
    decoder = MLP(decoder_in, hidden[::-1], image_shape, dtype=dtype, rngs=rngs)
    return encoder, decoder, ()
  raise ConfigError(f"unknown model.architecture {architecture!r}: use one of {ARCHITECTURES}")
