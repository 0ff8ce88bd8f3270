"""Image datasets: TFDS where it is prepared, local copies otherwise, a user's own files.

Nothing is ever faked: a dataset that cannot be found raises `DatasetError`
saying how to get it.

`config.dataset` accepts:
  mnist, fashion_mnist          TFDS if prepared in data_dir, else the local copies (offline.py)
  binarized_mnist               MNIST, binarized anew each step (dynamic binarization)
  cifar10 or any TFDS name      TFDS (tfds.py; needs the internet once, to prepare it)
  folder:/path/to/images        your images, center-cropped and resized to image_size when
                                read (files.py; the folder is indexed, not loaded: FolderSource)
  npz:/path/file.npz            arrays x_train/x_test (or train/test, or images) (files.py)
  codes:/path/to/vqvae_workdir  a tokenizer run's code grids, for a prior: jaxvq.tokens.codes.load

`load` dispatches to those modules. What cannot be images is refused when loaded,
before a run touches its workdir (validation.py).
"""
from __future__ import annotations

import os
from typing import Optional

from jaxvq.data import files, offline, tfds, validation
from jaxvq.data.sources import CORRUPT_IMAGES, ImageDataset
from jaxvq.errors import DatasetError


def load(name: str, *, image_size: int = 0, data_dir: Optional[str] = None,
         corrupt_images: str = "error") -> ImageDataset:
  """The dataset that `config.dataset` names; `image_size` 0 keeps the native size.

  `corrupt_images` ("error" or "skip") says what a folder's undecodable files are
  (sources.FolderSource). Raises DatasetError, in one line naming the array, folder or
  file and the problem, for data that cannot be found or cannot be images (see the module
  docstring).
  """
  if corrupt_images not in CORRUPT_IMAGES:
    raise DatasetError(f"corrupt_images must be one of {CORRUPT_IMAGES}; got {corrupt_images!r}")
  if image_size < 0:
    raise DatasetError(f"image_size must be a positive size, or 0 to keep the dataset's own; "
                       f"got {image_size}")
  if name.startswith("folder:"):
    if image_size <= 0:
      raise DatasetError("a folder: dataset needs a positive image size: add "
                         "--config.image_size=64 (or 28, 32, ...)")
    return files.load_folder(name[len("folder:"):], image_size, corrupt_images)
  if name.startswith("npz:"):
    return files.load_npz(name[len("npz:"):], image_size)
  binarize = name == "binarized_mnist"
  base = "mnist" if binarize else name
  has_copy = base in offline.COPIES
  # TFDS when the dataset is prepared; asked only if its folder exists, since
  # asking creates an empty folder (and a warning on every later run).
  dataset = None
  if not has_copy or os.path.isdir(os.path.join(tfds.tfds_dir(data_dir), base)):
    dataset = tfds.load(base, image_size, data_dir)
  if dataset is None:
    if not has_copy:
      raise DatasetError(
          f"dataset {name!r} is not prepared in TFDS's data_dir ({tfds.tfds_dir(data_dir)}) and "
          f"has no offline copy. On a machine with the internet, prepare it once in the "
          f"ArrayRecord format that tfds.data_source reads: `tfds build {base} "
          f"--file_format=array_record` (the build itself may need `pip install tensorflow`), "
          f"then point --config.data_dir at it.")
    dataset = offline.load(base, image_size)
  dataset.name = name
  dataset.binarize = binarize
  validation.check_splits(name, dataset.train.image_shape, dataset.test.image_shape,
                          len(dataset.test))
  return dataset
