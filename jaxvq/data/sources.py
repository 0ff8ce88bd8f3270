"""Random access to the examples of a split, as uint8 images, and a dataset of two splits.

Every dataset is served through `Source` (`inputs(indices)` -> [n, H, W, C]
uint8, `labels(indices)` -> [n] int32), so the input pipeline, the models and
the tests see one interface.
"""
from __future__ import annotations

import dataclasses
import warnings
from typing import Optional, Protocol

import jax
import jax.numpy as jnp
import numpy as np

from jaxvq.data.images import fit_image, read_image_file
from jaxvq.errors import DatasetError

# What to do with an image file that cannot be decoded (config.corrupt_images).
CORRUPT_IMAGES = ("error", "skip")


class Source(Protocol):
  """Random access to the examples of one split."""
  image_shape: tuple

  def __len__(self) -> int: ...

  def inputs(self, indices: np.ndarray) -> np.ndarray: ...   # [n, H, W, C] uint8 images

  def labels(self, indices: np.ndarray) -> np.ndarray: ...   # [n] int32 (0 where unlabelled)


@dataclasses.dataclass
class ArraySource:
  """A split held in memory."""
  array: np.ndarray                          # [N, ...] the inputs
  label_array: Optional[np.ndarray] = None   # [N] int

  @property
  def image_shape(self):
    return tuple(self.array.shape[1:])

  def __len__(self):
    return len(self.array)

  def inputs(self, indices):
    return self.array[indices]

  def labels(self, indices):
    if self.label_array is None:
      return np.zeros(len(indices), np.int32)
    return self.label_array[indices].astype(np.int32)


@dataclasses.dataclass
class TfdsSource:
  """A split read through `tfds.data_source` (random access, no TensorFlow)."""
  source: object
  image_shape: tuple

  def __len__(self):
    return len(self.source)

  def inputs(self, indices):
    return np.stack([fit_image(np.asarray(self.source[int(i)]["image"]), self.image_shape)
                     for i in indices])

  def labels(self, indices):
    return np.array([int(self.source[int(i)].get("label", 0)) for i in indices], np.int32)


def warn_skipped(paths) -> None:
  """One warning per corrupt file skipped (Python shows each message once)."""
  for path in dict.fromkeys(paths):
    warnings.warn(f"skipped the corrupt image file {path!r} (config.corrupt_images='skip'): "
                  f"the next readable image of the split takes its place")


@dataclasses.dataclass
class FolderSource:
  """A split of an image folder: its files, each decoded, center-cropped and resized to
  [image_size, image_size, 3] when read (nothing is held in memory).

  A file that cannot be decoded is a DatasetError naming it, or, with
  corrupt_images="skip", replaced by the next readable file of the split (in the
  order of `paths`, wrapping around), so a batch is still a pure function of its
  indices; `read` says which files were skipped.
  """
  paths: tuple           # the split's image files, sorted
  image_size: int
  corrupt_images: str = "error"   # "error" or "skip"

  @property
  def image_shape(self):
    return (self.image_size, self.image_size, 3)

  def __len__(self):
    return len(self.paths)

  def read(self, indices) -> tuple:
    """(images [n, size, size, 3] uint8, the paths of the files skipped to make them)."""
    images, skipped = [], []
    for i in indices:
      image, passed = self._read_one(int(i))
      images.append(image)
      skipped.extend(passed)
    return np.stack(images), tuple(skipped)

  def _read_one(self, index: int):
    skipped = []
    for offset in range(len(self.paths)):
      path = self.paths[(index + offset) % len(self.paths)]
      try:
        return read_image_file(path, self.image_size), skipped
      except Exception as e:  # pylint: disable=broad-except  (PIL raises many kinds)
        if self.corrupt_images != "skip":
          raise DatasetError(f"image file {path!r} cannot be decoded "
                             f"({' '.join(str(e).split()) or type(e).__name__}): remove or "
                             f"replace it, or set --config.corrupt_images=skip to train on the "
                             f"next readable image in its place") from e
        skipped.append(path)
    raise DatasetError(f"none of the {len(self.paths)} image files of this split (e.g. "
                       f"{self.paths[0]!r}) can be decoded")

  def inputs(self, indices):
    images, skipped = self.read(indices)
    warn_skipped(skipped)
    return images

  def labels(self, indices):
    return np.zeros(len(indices), np.int32)


@dataclasses.dataclass
class ImageDataset:
  name: str
  train: Source
  test: Source
  binarize: bool = False   # draw x ~ Bernoulli(pixel intensity) each time a batch is used
  num_classes: int = 0     # 0: unlabelled

  @property
  def image_shape(self):
    return self.train.image_shape

  def preprocess(self, inputs, key):
    """uint8 [B, H, W, C] -> float32 in [0, 1], or {0, 1} drawn per pixel if `binarize`.

    Runs on the device, inside the jitted steps.
    """
    x = inputs.astype(jnp.float32) / 255.0
    if self.binarize:
      x = jax.random.bernoulli(key, x).astype(jnp.float32)
    return x

  def pixel_variance(self, max_examples: int = 10000) -> float:
    """Variance of the training pixels scaled to [0, 1] (the normalized-MSE divisor)."""
    n = min(len(self.train), max_examples)
    idx = np.random.default_rng(0).permutation(len(self.train))[:n]
    x = self.train.inputs(np.sort(idx)).astype(np.float64) / 255.0
    return float(np.var(x))
