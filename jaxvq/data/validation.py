"""What cannot be images is refused when a dataset is loaded, before a run touches its workdir.

A user's arrays (npz:) are taken as the uint8 [N, H, W, C] images they hold or
refused with a `DatasetError` saying why (`as_uint8_nhwc`): arrays of another
shape than [N, H, W] or [N, H, W, C] with C 1 or 3, channel-first arrays,
integers outside 0..255, floats outside [0, 1] and [0, 255] or not finite. Every
dataset is refused if its training split's pixels are all equal (`check_varies`),
a split is empty, or its train and test images differ in shape (`check_splits`).
A folder's training split is checked on a sample of its images
(files.FOLDER_SAMPLE); a file that cannot be decoded is found when it is read
(sources.FolderSource).
"""
from __future__ import annotations

import numpy as np

from jaxvq.errors import DatasetError


def as_uint8_nhwc(x: np.ndarray, what: str) -> np.ndarray:
  """A user's array as the [N, H, W, C] uint8 images it holds, or a DatasetError saying why not.

  Integers are taken as 0..255; floats whose maximum is at most 1 as [0, 1]
  (scaled by 255), other floats as [0, 255] (rounded); booleans as {0, 1}.
  Anything else would be clipped or cast into other images than the user's.

  Args:
    x: the array, as read from the user's file.
    what: names the array in messages, e.g. "array 'x_train' in data.npz".

  Returns:
    [N, H, W, C] uint8, C 1 or 3 ([N, H, W] gains C = 1).
  """
  if x.ndim == 3:
    x = x[..., None]
  if x.ndim != 4:
    hint = (": reshape flattened images to [N, H, W]" if x.ndim == 2 else "")
    raise DatasetError(f"{what} must be images [N, H, W] or [N, H, W, C]; it has shape "
                       f"{list(x.shape)}{hint}")
  n, h, w, c = x.shape
  if h in (1, 3) and w > 4 and c > 4:
    raise DatasetError(f"{what} has shape {list(x.shape)}, channel-first [N, C, H, W]: jaxvq "
                       f"takes channel-last images; transpose them to [N, H, W, C] with "
                       f"x.transpose(0, 2, 3, 1)")
  if c not in (1, 3):
    hint = " (for RGBA, drop the alpha channel: x[..., :3])" if c == 4 else ""
    raise DatasetError(f"{what} has {c} channels (shape {list(x.shape)}); jaxvq takes 1 (grey) "
                       f"or 3 (RGB){hint}")
  if n == 0 or h == 0 or w == 0:
    raise DatasetError(f"{what} holds no images (shape {list(x.shape)})")
  if x.dtype == np.uint8:
    return x
  if x.dtype == np.bool_:
    return x.astype(np.uint8) * np.uint8(255)
  if np.issubdtype(x.dtype, np.integer):
    lo, hi = x.min(), x.max()
    if lo < 0 or hi > 255:
      raise DatasetError(f"{what} holds integers from {lo} to {hi}; jaxvq takes integer pixels "
                         f"in 0..255: scale them (16-bit images: x // 257), don't clip them")
    return x.astype(np.uint8)
  if not np.issubdtype(x.dtype, np.floating):
    raise DatasetError(f"{what} has dtype {x.dtype}; images are integers in 0..255 or floats "
                       f"in [0, 1] or [0, 255]")
  lo, hi = x.min(), x.max()   # NaN and Inf show up here, in one pass each
  if not (np.isfinite(lo) and np.isfinite(hi)):
    nan, inf = int(np.isnan(x).sum()), int(np.isinf(x).sum())
    raise DatasetError(f"{what} holds {nan} NaN and {inf} infinite value(s); images need a "
                       f"finite value in every pixel")
  if lo < 0 or hi > 255:
    raise DatasetError(f"{what} holds floats from {lo:.4g} to {hi:.4g}, not pixels: jaxvq "
                       f"takes floats in [0, 1] or [0, 255] (rescale the array, e.g. "
                       f"(x - x.min()) / (x.max() - x.min()) for normalized data)")
  return np.round(x * 255.0 if hi <= 1.0 else x).astype(np.uint8)


def check_varies(train: np.ndarray, what: str) -> None:
  """Refuses a training split whose pixels are all equal: nothing to learn, and the
  normalized MSE would divide by its zero variance."""
  if train.min() == train.max():
    raise DatasetError(f"every pixel of {what} is {train.flat[0]}: a constant split has "
                       f"nothing to learn (and no variance to normalize the error by)")


def check_splits(what: str, train_shape, test_shape, num_test: int,
                 resized: bool = False) -> None:
  """Refuses splits a model cannot train and be evaluated on as one dataset.

  Args:
    what: names the dataset or its arrays in messages.
    train_shape, test_shape: [H, W, C] of each split's images.
    num_test: the test split's number of examples.
    resized: whether both splits are resized to one size after this check (then only
      their channels must agree).
  """
  if num_test == 0:
    raise DatasetError(f"{what}: the test split is empty; it needs at least one image")
  channels = train_shape[-1], test_shape[-1]
  if channels[0] not in (1, 3):
    raise DatasetError(f"{what}: images of shape {tuple(train_shape)} have {channels[0]} "
                       f"channels; jaxvq takes 1 (grey) or 3 (RGB)")
  if channels[0] != channels[1]:
    raise DatasetError(f"{what}: train images have {channels[0]} channel(s) and test images "
                       f"{channels[1]}; both splits must hold images of one shape")
  if not resized and tuple(train_shape) != tuple(test_shape):
    raise DatasetError(f"{what}: train images are {tuple(train_shape)} and test images "
                       f"{tuple(test_shape)} (H, W, C); both splits must hold images of one "
                       f"shape (or set --config.image_size to resize both to one size)")
