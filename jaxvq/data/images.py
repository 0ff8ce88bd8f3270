"""Bringing an image, or an array of them, to the size a dataset serves: a center crop, then a
bicubic resize."""
from __future__ import annotations

import numpy as np


def center_crop_resize(im, size: int) -> np.ndarray:
  """A PIL image's largest centered square, resized to [size, size, C] uint8."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  w, h = im.size
  s = min(w, h)
  im = im.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s))
  return np.asarray(im.resize((size, size), Image.BICUBIC), np.uint8)


def fit_image(image: np.ndarray, shape) -> np.ndarray:
  """One uint8 image [H, W, C] brought to `shape`."""
  if image.ndim == 2:
    image = image[..., None]
  if image.shape == tuple(shape):
    return image
  from PIL import Image  # pylint: disable=g-import-not-at-top
  mode_image = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
  out = center_crop_resize(mode_image, shape[0])
  return out.reshape(shape)


def fit_images(images: np.ndarray, size: int) -> np.ndarray:
  """uint8 images [N, H, W, C] brought to [N, size, size, C] (the same array for size 0, or
  when they have that size)."""
  if not size or images.shape[1:3] == (size, size):
    return images
  shape = (size, size, images.shape[-1])
  return np.stack([fit_image(x, shape) for x in images])


def read_image_file(path: str, size: int) -> np.ndarray:
  """An image file decoded as RGB, center-cropped and resized to [size, size, 3] uint8.

  Raises whatever PIL raises for a file it cannot decode (OSError for a truncated
  or unrecognised file, among others).
  """
  from PIL import Image  # pylint: disable=g-import-not-at-top
  with Image.open(path) as im:
    return center_crop_resize(im.convert("RGB"), size)
