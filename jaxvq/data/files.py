"""A user's own images: a folder of image files, or the arrays of an .npz file.

  folder:PATH   the image files under PATH (IMAGE_EXTENSIONS), split 90/10, indexed now and
                decoded, center-cropped and resized when read (sources.FolderSource); a
                sample of FOLDER_SAMPLE training images is decoded now, to check them
  npz:PATH      arrays x_train and x_test (or train and test) as the splits, or images split
                90/10, checked and converted to uint8 now (jaxvq/data/validation.py)
"""
from __future__ import annotations

import os
import zipfile

import numpy as np

from jaxvq.data import validation
from jaxvq.data.images import fit_images
from jaxvq.data.sources import ArraySource, FolderSource, ImageDataset
from jaxvq.errors import DatasetError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
FOLDER_SAMPLE = 64   # a folder's training images decoded when it is loaded, to check them


def load_npz(path: str, image_size: int = 0) -> ImageDataset:
  """The arrays of an .npz file: x_train and x_test, train and test, or images (split 90/10),
  each checked (jaxvq/data/validation.py) and resized to `image_size` (0: their own)."""
  if not os.path.exists(path):
    raise DatasetError(f"npz file {path!r} does not exist")
  if os.path.isdir(path):
    raise DatasetError(f"{path!r} is a directory: npz: takes one .npz file (folder:PATH reads "
                       f"a folder of images)")
  try:
    loaded = np.load(path, allow_pickle=False)
    if isinstance(loaded, np.lib.npyio.NpzFile):
      with loaded as f:
        arrays = dict(f)
  except (OSError, ValueError, zipfile.BadZipFile) as e:
    raise DatasetError(f"{path!r} is not a readable .npz file ({' '.join(str(e).split())}): "
                       f"write one with numpy.savez (arrays x_train and x_test, or images)") from e
  if not isinstance(loaded, np.lib.npyio.NpzFile):
    raise DatasetError(f"{path!r} is a .npy file (one array), not an .npz: write the splits "
                       f"with numpy.savez(\"data.npz\", x_train=..., x_test=...), or "
                       f"numpy.savez(\"data.npz\", images=numpy.load({path!r})) to hold "
                       f"out 10% as the test split")
  for train_key, test_key in (("x_train", "x_test"), ("train", "test")):
    if train_key in arrays and test_key in arrays:
      train = validation.as_uint8_nhwc(arrays[train_key], f"array {train_key!r} in {path}")
      test = validation.as_uint8_nhwc(arrays[test_key], f"array {test_key!r} in {path}")
      validation.check_varies(train, f"array {train_key!r} in {path}")
      validation.check_splits(f"arrays {train_key!r} and {test_key!r} in {path}",
                              train.shape[1:], test.shape[1:], len(test),
                              resized=bool(image_size))
      break
  else:
    if "images" not in arrays:
      raise DatasetError(f"{path!r} needs arrays x_train and x_test, train and test, or images; "
                         f"it has {sorted(arrays)}")
    images = validation.as_uint8_nhwc(arrays["images"], f"array 'images' in {path}")
    if len(images) < 2:
      raise DatasetError(f"array 'images' in {path} holds {len(images)} image(s); it needs at "
                         f"least 2 (10% of them, at least one, are held out as the test split)")
    train, test = holdout(images)
    validation.check_varies(train, f"array 'images' in {path} (the 90% trained on)")
  return ImageDataset(f"npz:{path}", ArraySource(fit_images(train, image_size)),
                      ArraySource(fit_images(test, image_size)))


def load_folder(path: str, image_size: int, corrupt_images: str = "error") -> ImageDataset:
  """The folder's image files, split 90/10, decoded when read; a sample checked now."""
  if not os.path.isdir(path):
    raise DatasetError(f"image folder {path!r} does not exist")
  files = image_files(path)
  if len(files) < 2:
    raise DatasetError(f"image folder {path!r} has {len(files)} image file(s) "
                       f"({', '.join(IMAGE_EXTENSIONS)}); it needs at least 2")
  train, test = (FolderSource(tuple(split), image_size, corrupt_images)
                 for split in holdout(np.asarray(files, dtype=object)))
  sample = np.random.default_rng(0).permutation(len(train))[:FOLDER_SAMPLE]
  of_sample = f", a sample of {len(sample)}" if len(sample) < len(train) else ""
  validation.check_varies(train.inputs(np.sort(sample)),
                          f"image folder {path!r} (the 90% trained on{of_sample})")
  return ImageDataset(f"folder:{path}", train, test)


def image_files(path: str) -> list:
  """The image files under the folder `path`, each file once, sorted.

  Symbolic links are followed, but a directory is entered only once, so links
  that lead back up the tree (to `.` or `..`) end the walk instead of looping;
  a file reached by several paths (links, hard links) is listed under the
  first, in sorted order. Hidden files and directories (".name") are skipped,
  as a shell's `*` would.
  """
  def identity(p):
    st = os.stat(p)
    return st.st_dev, st.st_ino

  seen_dirs, seen_files, files = {identity(path)}, set(), []
  for dirpath, dirnames, filenames in os.walk(path, followlinks=True):
    # os.walk enters what is left in `dirnames`, in order: sorted, unseen, readable.
    kept = []
    for d in sorted(dirnames):
      try:
        key = identity(os.path.join(dirpath, d))
      except OSError:  # a broken link, or no permission
        continue
      if not d.startswith(".") and key not in seen_dirs:
        seen_dirs.add(key)
        kept.append(d)
    dirnames[:] = kept
    for name in sorted(filenames):
      if name.startswith(".") or not name.lower().endswith(IMAGE_EXTENSIONS):
        continue
      f = os.path.join(dirpath, name)
      try:
        key = identity(f)
      except OSError:  # a broken link: listed, and reported as unreadable
        key = ("broken", f)
      if key not in seen_files:
        seen_files.add(key)
        files.append(f)
  return sorted(files)


def holdout(images: np.ndarray, fraction: float = 0.1):
  """A fixed 90/10 train/test split."""
  order = np.random.default_rng(0).permutation(len(images))
  n_test = max(1, int(round(len(images) * fraction)))
  return images[np.sort(order[n_test:])], images[np.sort(order[:n_test])]
