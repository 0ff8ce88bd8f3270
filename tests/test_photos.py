"""`jaxvq photos`: crops of scikit-image's photographs, made offline (jaxvq/data/photos.py)."""
import os

import numpy as np
import pytest
from PIL import Image

from jaxvq.data import load_dataset
from jaxvq.data.photos import save_photo_crops
from jaxvq.errors import DatasetError

pytest.importorskip("skimage.data")


def _read(folder):
  return {name: np.asarray(Image.open(os.path.join(folder, name)))
          for name in sorted(os.listdir(folder))}


def test_crops_are_real_rgb_images_of_the_size_the_same_for_the_same_seed(tmp_path):
  written = save_photo_crops(str(tmp_path / "a"), num=10, size=16, seed=3)
  save_photo_crops(str(tmp_path / "b"), num=10, size=16, seed=3)
  save_photo_crops(str(tmp_path / "c"), num=10, size=16, seed=4)
  a, b, c = _read(tmp_path / "a"), _read(tmp_path / "b"), _read(tmp_path / "c")
  assert len(a) == 10 and sum(written["photos"].values()) == 10
  assert all(image.shape == (16, 16, 3) and image.dtype == np.uint8 for image in a.values())
  assert all(image.std() > 0 for image in a.values())
  assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
  assert a.keys() != c.keys() or any(not np.array_equal(a[k], c[k]) for k in a)
  assert sorted(os.listdir(tmp_path)) == ["a", "b", "c"]   # no partial folder left behind


def test_the_folder_trains_as_a_folder_dataset(tmp_path):
  save_photo_crops(str(tmp_path / "photos"), num=20, size=16)
  dataset = load_dataset(f"folder:{tmp_path / 'photos'}", image_size=16)
  assert dataset.image_shape == (16, 16, 3)
  assert len(dataset.train) + len(dataset.test) == 20


@pytest.mark.parametrize("num, size, error", [
    (0, 16, "num 0: give at least 1"),
    (5, 4, "size 4: give a crop size in [8, "),
    (5, 10000, "size 10000: give a crop size in [8, ")])
def test_bad_requests_are_refused_before_anything_is_written(tmp_path, num, size, error):
  with pytest.raises(DatasetError, match=error.replace("[", r"\[")):
    save_photo_crops(str(tmp_path / "out"), num=num, size=size)
  assert not os.listdir(tmp_path)


def test_an_output_that_holds_anything_is_refused_and_left_as_it_was(tmp_path):
  (tmp_path / "mine.txt").write_text("a user's file")
  with pytest.raises(DatasetError, match="exists and is not an empty folder"):
    save_photo_crops(str(tmp_path), num=2, size=16)
  assert sorted(os.listdir(tmp_path)) == ["mine.txt"]
  assert (tmp_path / "mine.txt").read_text() == "a user's file"
