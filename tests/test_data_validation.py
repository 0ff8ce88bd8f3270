"""Data that cannot be images is refused when loaded, in one line naming the array and the
problem, before a run writes anything in its workdir."""
import json
import os
import re
import signal
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from jaxvq.data import datasets, validation
from jaxvq.data.files import image_files
from jaxvq.errors import DatasetError
from jaxvq.train import train_and_evaluate
from snapshots import snapshot

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RNG = np.random.default_rng(0)




@pytest.fixture
def workdir(tmp_path):
  """A workdir jaxvq has claimed (its record) that also holds a user's files."""
  path = tmp_path / "workdir"
  (path / "sub").mkdir(parents=True)
  (path / ".jaxvq").write_text(json.dumps({"run_id": "0" * 32, "jaxvq_version": "0.2.0",
                                           "files": ["checkpoints", "config.json"]}))
  (path / "notes.txt").write_text("mine\n")
  (path / "sub" / "data.bin").write_bytes(bytes(range(256)))
  return path


def _refused(config, dataset, workdir, match, image_size=0):
  """train_and_evaluate on `dataset` raises a one-line DatasetError matching `match`, and leaves
  the workdir's files byte-identical."""
  before = snapshot(workdir)
  config.dataset, config.image_size = dataset, image_size
  with pytest.raises(DatasetError, match=match) as e:
    train_and_evaluate(config, str(workdir))
  assert "\n" not in str(e.value)
  assert snapshot(workdir) == before


def _npz(tmp_path, **arrays):
  path = tmp_path / "data.npz"
  np.savez(path, **arrays)
  return f"npz:{path}"


def _noise(shape, dtype=np.float32):
  return RNG.random(shape).astype(dtype)


# ----------------------------------------------------------------------------- values

REFUSED_VALUES = {
    "integers above 255": (np.arange(512).reshape(8, 8, 8) % 300, r"'x_train' .* from 0 to 299"),
    "256 in a uint16 array": (np.full((8, 8, 8), 256, np.uint16), "integers from 256 to 256"),
    "a negative integer": (np.arange(-1, 511).reshape(8, 8, 8), "integers from -1 to 510"),
    "N(0, 1) noise": (RNG.normal(size=(8, 8, 8)), r"'x_train' .* floats from -\d.* not pixels"),
    "floats above 255": (np.linspace(0, 255.5, 512).reshape(8, 8, 8), "floats from 0 to 255.5"),
    "a slightly negative float": (np.linspace(-0.01, 1, 512).reshape(8, 8, 8), "floats from -0.01"),
    "NaN pixels": (np.where(np.arange(512).reshape(8, 8, 8) == 3, np.nan, 0.5), "1 NaN and 0 inf"),
    "an infinite pixel": (np.where(np.arange(512).reshape(8, 8, 8) == 3, np.inf, 0.5),
                          "0 NaN and 1 infinite"),
    "a -inf pixel": (np.where(np.arange(512).reshape(8, 8, 8) == 3, -np.inf, 0.5),
                     "0 NaN and 1 infinite"),
    "constant floats": (np.full((8, 8, 8), 0.5), r"every pixel of array 'x_train' .* is 128"),
    "constant bytes": (np.zeros((8, 8, 8), np.uint8), r"every pixel of array 'x_train' .* is 0"),
    "constant [0, 255] floats": (np.full((8, 8, 8), 7.0), r"every pixel .* is 7: a constant"),
    "all-True booleans": (np.ones((8, 8, 8), bool), r"every pixel .* is 255"),
    "floats equal after rounding": (np.linspace(0.5, 0.501, 512).reshape(8, 8, 8), "is 128"),
    "strings": (np.full((8, 8, 8), "a"), "has dtype <U1"),
    "complex numbers": (np.ones((8, 8, 8), np.complex64), "has dtype complex64"),
}


@pytest.mark.parametrize("name", list(REFUSED_VALUES))
def test_values_that_are_not_pixels_are_refused(name, tiny_config, tmp_path, workdir):
  x_train, match = REFUSED_VALUES[name]
  _refused(tiny_config, _npz(tmp_path, x_train=x_train, x_test=_noise((4, 8, 8))), workdir, match)


def test_bad_values_in_the_test_split_or_images_are_named(tiny_config, tmp_path, workdir):
  bad = RNG.normal(size=(4, 8, 8))
  _refused(tiny_config, _npz(tmp_path, x_train=_noise((8, 8, 8)), x_test=bad), workdir,
           "array 'x_test' .* floats from")
  _refused(tiny_config, _npz(tmp_path, train=_noise((8, 8, 8)), test=bad * np.nan), workdir,
           "array 'test' .* 256 NaN")
  _refused(tiny_config, _npz(tmp_path, images=np.full((10, 8, 8), 300)), workdir,
           "array 'images' .* integers from 300")
  _refused(tiny_config, _npz(tmp_path, images=np.ones((10, 8, 8))), workdir,
           r"every pixel of array 'images' .*\(the 90% trained on\) is 255")


ACCEPTED_VALUES = {   # array -> the uint8 images it is served as
    "[0, 1] floats are scaled": (np.array([0.0, 0.5, 1.0]), [0, 128, 255]),
    "[0, 255] floats are rounded": (np.array([0.0, 1.4, 254.6, 255.0]), [0, 1, 255, 255]),
    "floats up to 1 are [0, 1]": (np.array([0.0, 0.2, 1.0]), [0, 51, 255]),
    "floats above 1 are [0, 255]": (np.array([0.0, 1.2, 2.0]), [0, 1, 2]),
    "float16": (np.array([0.0, 1.0], np.float16), [0, 255]),
    "int64 in 0..255": (np.array([0, 7, 255]), [0, 7, 255]),
    "int8 in 0..127": (np.array([0, 127], np.int8), [0, 127]),
    "uint16 in 0..255": (np.array([0, 255], np.uint16), [0, 255]),
    "booleans are {0, 1}": (np.array([False, True]), [0, 255]),
    "uint8 as it is": (np.array([0, 1, 255], np.uint8), [0, 1, 255]),
}


@pytest.mark.parametrize("name", list(ACCEPTED_VALUES))
def test_values_that_are_pixels_are_served_as_uint8(name, tmp_path):
  values, expected = ACCEPTED_VALUES[name]
  x = np.resize(values, (4, 4, 4, 1))
  ds = datasets.load(_npz(tmp_path, x_train=x, x_test=x[:1]))
  served = ds.train.inputs(np.arange(4))
  assert served.dtype == np.uint8 and served.shape == (4, 4, 4, 1)
  np.testing.assert_array_equal(served, np.resize(np.array(expected, np.uint8), (4, 4, 4, 1)))


def test_a_constant_test_split_is_kept(tmp_path):
  """Only the training split's variance matters (it normalizes the error)."""
  ds = datasets.load(_npz(tmp_path, x_train=_noise((8, 8, 8)), x_test=np.zeros((2, 8, 8))))
  assert ds.test.inputs(np.arange(2)).max() == 0


# ----------------------------------------------------------------------------- shapes

REFUSED_ARRAYS = {
    "28x28 train, 32x32 test": (dict(x_train=_noise((8, 28, 28)), x_test=_noise((4, 32, 32))),
                                r"train images are \(28, 28, 1\) and test images \(32, 32, 1\)"),
    "8x8 train, 8x12 test": (dict(x_train=_noise((8, 8, 8)), x_test=_noise((4, 8, 12))),
                             r"\(8, 8, 1\) and test images \(8, 12, 1\)"),
    "RGB train, grey test": (dict(x_train=_noise((8, 8, 8, 3)), x_test=_noise((4, 8, 8, 1))),
                             "train images have 3 channel.* test images 1"),
    "grey [N, H, W] train, RGB test": (dict(x_train=_noise((8, 8, 8)), x_test=_noise((4, 8, 8, 3))),
                                       "train images have 1 channel.* test images 3"),
    "channel-first RGB": (dict(x_train=_noise((8, 3, 32, 32)), x_test=_noise((4, 3, 32, 32))),
                          r"'x_train' .* \[8, 3, 32, 32\], channel-first .* transpose"),
    "channel-first grey": (dict(x_train=_noise((8, 1, 28, 28)), x_test=_noise((4, 1, 28, 28))),
                           "channel-first .* x.transpose"),
    "channel-first test only": (dict(x_train=_noise((8, 32, 32, 3)), x_test=_noise((4, 3, 32, 32))),
                                "'x_test' .* channel-first"),
    "5 channels": (dict(x_train=_noise((8, 8, 8, 5)), x_test=_noise((4, 8, 8, 5))),
                   r"has 5 channels .* 1 \(grey\) or 3 \(RGB\)"),
    "2 channels": (dict(x_train=_noise((8, 8, 8, 2)), x_test=_noise((4, 8, 8, 2))),
                   "has 2 channels"),
    "4 channels (RGBA)": (dict(x_train=_noise((8, 8, 8, 4)), x_test=_noise((4, 8, 8, 4))),
                          r"has 4 channels .* drop the alpha"),
    "an empty test split": (dict(x_train=_noise((8, 8, 8)), x_test=_noise((0, 8, 8))),
                            r"'x_test' .* holds no images \(shape \[0, 8, 8, 1\]\)"),
    "an empty train split": (dict(x_train=_noise((0, 8, 8, 3)), x_test=_noise((4, 8, 8, 3))),
                             "'x_train' .* holds no images"),
    "zero-width images": (dict(x_train=_noise((8, 8, 0)), x_test=_noise((4, 8, 0))),
                          "holds no images"),
    "flattened images": (dict(x_train=_noise((8, 64)), x_test=_noise((4, 64))),
                         r"shape \[8, 64\]: reshape flattened"),
    "one image a split": (dict(x_train=_noise((8, 8)), x_test=_noise((8, 8))), r"shape \[8, 8\]"),
    "5-d arrays": (dict(x_train=_noise((2, 8, 8, 8, 1)), x_test=_noise((2, 8, 8, 8, 1))),
                   r"must be images \[N, H, W\] or \[N, H, W, C\]"),
    "a single image in images": (dict(images=_noise((1, 8, 8))), "holds 1 image.* at least 2"),
    "no image in images": (dict(images=_noise((0, 8, 8))), "holds no images"),
    "no split arrays": (dict(pictures=_noise((8, 8, 8))), r"needs arrays .* it has \['pictures'\]"),
}


@pytest.mark.parametrize("name", list(REFUSED_ARRAYS))
def test_arrays_that_are_not_one_dataset_of_images_are_refused(name, tiny_config, tmp_path,
                                                                workdir):
  arrays, match = REFUSED_ARRAYS[name]
  _refused(tiny_config, _npz(tmp_path, **arrays), workdir, match)


def test_channels_must_agree_even_when_resized(tiny_config, tmp_path, workdir):
  _refused(tiny_config, _npz(tmp_path, x_train=_noise((8, 8, 8, 3)), x_test=_noise((4, 12, 12))),
           workdir, "train images have 3 channel", image_size=8)


@pytest.mark.parametrize("train_shape, test_shape, image_size, served", [
    ((8, 28, 28), (4, 32, 32), 16, (16, 16, 1)),       # sizes differ: both resized
    ((8, 32, 32, 3), (4, 32, 32, 3), 0, (32, 32, 3)),  # channel-last RGB
    ((8, 3, 32, 3), (4, 3, 32, 3), 0, (3, 32, 3)),     # 3 rows of RGB pixels, not channel-first
    ((8, 3, 4, 1), (4, 3, 4, 1), 0, (3, 4, 1)),        # too small to be channel-first
    ((8, 1, 28, 1), (4, 1, 28, 1), 0, (1, 28, 1)),
])
def test_neighbouring_shapes_are_served(train_shape, test_shape, image_size, served, tmp_path):
  ds = datasets.load(_npz(tmp_path, x_train=_noise(train_shape), x_test=_noise(test_shape)),
                     image_size=image_size)
  assert ds.image_shape == ds.test.image_shape == served


@pytest.mark.parametrize("train_shape, test_shape, num_test, match", [
    ((8, 8, 4), (8, 8, 4), 5, "have 4 channels"),
    ((8, 8, 1), (8, 8, 1), 0, "the test split is empty"),
    ((8, 8, 3), (16, 16, 3), 5, r"train images are \(8, 8, 3\)"),
])
def test_every_dataset_has_splits_of_one_shape(train_shape, test_shape, num_test, match):
  """The check `load` makes of TFDS and the offline copies too."""
  with pytest.raises(DatasetError, match=match):
    validation.check_splits("name", train_shape, test_shape, num_test)


def test_splits_of_one_shape_pass():
  for shape in ((8, 8, 1), (8, 8, 3), (28, 28, 1)):
    validation.check_splits("name", shape, shape, 1)


def test_a_npy_file_or_a_directory_given_as_npz(tiny_config, tmp_path, workdir):
  np.save(tmp_path / "x.npy", _noise((8, 8, 8)))
  _refused(tiny_config, f"npz:{tmp_path / 'x.npy'}", workdir, r"is a \.npy file .* numpy\.savez")
  _refused(tiny_config, f"npz:{tmp_path / 'x.npz'}", workdir, "does not exist")
  (tmp_path / "bad.npz").write_bytes(b"not a zip")
  _refused(tiny_config, f"npz:{tmp_path / 'bad.npz'}", workdir, "not a readable .npz")
  np.savez(tmp_path / "objects.npz", x_train=np.array([None, 1], object), x_test=np.zeros(2))
  _refused(tiny_config, f"npz:{tmp_path / 'objects.npz'}", workdir, "not a readable .npz")
  _refused(tiny_config, f"npz:{tmp_path}", workdir, "is a directory")


@pytest.mark.parametrize("dataset, image_size, match", [
    ("folder:{}", 0, "needs a positive image size"),
    ("folder:{}", -1, "image_size must be a positive size.* got -1"),
    ("folder:{}", -64, "got -64"),
    ("npz:{}/data.npz", -1, "got -1"),
    ("mnist", -28, "got -28"),
])
def test_image_size_below_one_is_refused_as_such(dataset, image_size, match, tmp_path):
  np.savez(tmp_path / "data.npz", images=_noise((10, 8, 8)))
  Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "a.png")
  with pytest.raises(DatasetError, match=match):
    datasets.load(dataset.format(tmp_path), image_size=image_size)


# ----------------------------------------------------------------------------- folders


def _save(path, value, size=(8, 8)):
  Image.fromarray(np.full(size + (3,), value, np.uint8)).save(path)


@pytest.fixture
def linked_folder(tmp_path):
  """Three distinct images, reached also through links to '.', '..', a sibling directory, a
  linked file and a hard link."""
  root = tmp_path / "images"
  (root / "sub" / "deeper").mkdir(parents=True)
  _save(root / "a.png", 10)
  _save(root / "sub" / "b.png", 20)
  _save(root / "sub" / "deeper" / "c.png", 30)
  os.symlink(".", root / "self")
  os.symlink("..", root / "sub" / "up")
  os.symlink("../..", root / "sub" / "deeper" / "top")
  os.symlink("sub", root / "sub_again")
  os.symlink("a.png", root / "a_link.png")
  os.link(root / "a.png", root / "a_hard.png")
  os.symlink("missing.png", root / "broken.png")
  _save(root / ".hidden.png", 40)
  return root


class _Timeout(Exception):
  """Not an OSError (TimeoutError is one), which os.walk would swallow."""


def _within(seconds, fn):
  """fn(), or a failure if it takes longer than `seconds` (a walk that loops)."""
  def timeout(*_):
    raise _Timeout(f"still running after {seconds} s")
  previous = signal.signal(signal.SIGALRM, timeout)
  signal.alarm(seconds)
  try:
    return fn()
  finally:
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def test_folder_walk_ends_and_counts_each_file_once(linked_folder):
  files = _within(20, lambda: image_files(str(linked_folder)))
  names = [os.path.relpath(f, linked_folder) for f in files]
  assert names == ["a.png", "broken.png", "sub/b.png", "sub/deeper/c.png"]


def test_folder_dataset_through_links_holds_each_image_once(linked_folder):
  ds = _within(20, lambda: datasets.load(f"folder:{linked_folder}", image_size=4,
                                         corrupt_images="skip"))
  assert len(ds.train) + len(ds.test) == 4   # a.png, broken.png, b.png, c.png
  with pytest.warns(UserWarning, match="skipped the corrupt image file .*broken.png"):
    served = np.concatenate([ds.train.inputs(np.arange(len(ds.train))),
                             ds.test.inputs(np.arange(len(ds.test)))])
  assert sorted(set(served[:, 0, 0, 0].tolist())) == [10, 20, 30]


def test_folder_of_one_colour_is_refused(tiny_config, tmp_path, workdir):
  folder = tmp_path / "black"
  folder.mkdir()
  for i in range(5):
    _save(folder / f"{i}.png", 0, (8 + i, 8))
  _refused(tiny_config, f"folder:{folder}", workdir,
           r"every pixel of image folder .* is 0: a constant split", image_size=8)


# ----------------------------------------------------------------------------- the command line


def _train(workdir, **overrides):
  command = [sys.executable, "train.py", "--config=configs/tiny.py", f"--workdir={workdir}"]
  command += [f"--config.{k}={v}" for k, v in overrides.items()]
  return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
@pytest.mark.parametrize("make_dataset, match", [
    (lambda tmp: _npz(tmp, x_train=RNG.normal(size=(64, 8, 8)), x_test=_noise((16, 8, 8))),
     "error: array 'x_train' in .*data.npz holds floats from -"),
    (lambda tmp: _npz(tmp, x_train=_noise((64, 28, 28)), x_test=_noise((16, 32, 32))),
     r"error: arrays 'x_train' and 'x_test' .* \(28, 28, 1\) and test images \(32, 32, 1\)"),
])
def test_train_py_refuses_in_one_line_and_leaves_the_workdir_alone(make_dataset, match, tmp_path,
                                                                    workdir):
  before = snapshot(workdir)
  done = _train(workdir, dataset=make_dataset(tmp_path))
  assert done.returncode == 2, done.stderr
  assert "Traceback" not in done.stderr + done.stdout
  lines = done.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
  assert re.search(match, lines[0]), lines[0]
  assert snapshot(workdir) == before
