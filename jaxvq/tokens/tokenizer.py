"""What a tokenizer is: the interface every prior, sampler and measure uses to turn images
into code grids and back (today: the VQ-VAE, with any of its quantizers).

  codes = tokenizer.encode_to_indices(images)    # [B, H, W, C] in [0, 1] -> [B, h, w] int32
  images = tokenizer.decode_from_indices(codes)  # -> [B, H, W, C] in [0, 1]
"""
from __future__ import annotations

from typing import Protocol, runtime_checkable

import jax


@runtime_checkable
class Tokenizer(Protocol):
  """Images to code grids and back (MaskGIT's `encode_to_indices` / `decode_from_indices`).

  grid_shape: (h, w), the code grid of one image.
  num_codes: K, the codes at each position (each stage, for residual codes).
  code_depth: codes per position: 1, or Q for residual codes ([B, h, w, Q] indices).
  """
  grid_shape: tuple
  num_codes: int

  @property
  def code_depth(self) -> int: ...

  def encode_to_indices(self, x: jax.Array) -> jax.Array: ...

  def decode_from_indices(self, indices: jax.Array) -> jax.Array: ...
