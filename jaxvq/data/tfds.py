"""A TensorFlow Datasets dataset prepared on disk, read through `tfds.data_source` (random
access to ArrayRecord files, no TensorFlow): its train split and its test (or validation)
split as sources.TfdsSource."""
from __future__ import annotations

import os
from typing import Optional

from jaxvq.data.sources import ImageDataset, TfdsSource
from jaxvq.errors import DatasetError


def tfds_dir(data_dir: Optional[str] = None) -> str:
  """TFDS's data_dir: `data_dir`, else $TFDS_DATA_DIR, else ~/tensorflow_datasets."""
  return data_dir or os.environ.get("TFDS_DATA_DIR") or os.path.expanduser("~/tensorflow_datasets")


def load(name: str, image_size: int, data_dir: Optional[str]) -> Optional[ImageDataset]:
  """The TFDS dataset if it is prepared on disk, else None."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  try:
    builder = tfds.builder(name, data_dir=tfds_dir(data_dir), try_gcs=False)
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
  source = lambda split: TfdsSource(tfds.data_source(name, split=split, data_dir=tfds_dir(data_dir),
                                                     try_gcs=False), shape)
  num_classes = features["label"].num_classes if "label" in features else 0
  return ImageDataset(name, source("train"), source(test_split), num_classes=num_classes)
