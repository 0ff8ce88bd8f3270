import os
from unittest import mock

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from jaxvq.data import datasets
from jaxvq.train import train_and_evaluate


def test_fashion_mnist_is_the_full_real_dataset():
  ds = datasets.load("fashion_mnist")
  assert (len(ds.train), len(ds.test), ds.image_shape) == (60000, 10000, (28, 28, 1))
  x = ds.train.inputs(np.arange(1000))
  assert x.dtype == np.uint8 and x.max() == 255 and 0.2 < x.mean() / 255 < 0.4
  assert sorted(np.unique(ds.train.label_array)) == list(range(10))


def test_mnist_recovers_the_original_bytes():
  ds = datasets.load("mnist")
  assert (len(ds.train), len(ds.test)) == (60000, 10000)
  x = ds.test.inputs(np.arange(100))
  assert x.dtype == np.uint8 and x.max() == 255
  assert datasets.load("binarized_mnist").binarize and not ds.binarize


def test_unknown_dataset_is_a_clear_error():
  with pytest.raises(datasets.DatasetError, match="unknown dataset 'no_such_data'"):
    datasets.load("no_such_data")


def test_cifar10_without_the_internet_says_how_to_get_it(tmp_path):
  with pytest.raises(datasets.DatasetError, match="tfds build cifar10"):
    datasets.load("cifar10", data_dir=str(tmp_path))


def _mock_tfds():
  return [tfds.testing.mock_data(num_examples=64, policy=tfds.testing.MockPolicy.USE_CODE),
          mock.patch.object(tfds.core.DatasetBuilder, "is_prepared", return_value=True)]


@pytest.mark.slow
def test_cifar10_code_path_through_mocked_tfds(tiny_config, tmp_path):
  mocks = _mock_tfds()
  with mocks[0], mocks[1]:
    ds = datasets.load("cifar10")
    assert ds.image_shape == (32, 32, 3) and ds.train.inputs([0, 5]).dtype == np.uint8
    tiny_config.dataset = "cifar10"
    tiny_config.num_train_steps, tiny_config.eval_batch_size = 4, 32
    final = train_and_evaluate(tiny_config, str(tmp_path))
  assert np.isfinite(final["normalized_mse"])
  assert os.path.exists(tmp_path / "images" / "reconstructions_000004.png")


def test_folder_dataset_crops_resizes_and_skips_unreadable_files(tmp_path):
  rng = np.random.default_rng(0)
  for i in range(10):
    Image.fromarray(rng.integers(0, 255, (40 + i, 30, 3), dtype=np.uint8)).save(tmp_path / f"{i}.png")
  (tmp_path / "broken.jpg").write_bytes(b"not an image")
  ds = datasets.load(f"folder:{tmp_path}", image_size=16, corrupt_images="skip")
  assert ds.image_shape == (16, 16, 3) and len(ds.train) + len(ds.test) == 11
  splits = (ds.train, ds.test)
  with pytest.warns(UserWarning, match="skipped the corrupt image file .*broken.jpg"):
    served = np.concatenate([s.inputs(np.arange(len(s))) for s in splits])
  assert served.shape == (11, 16, 16, 3)
  assert len({x.tobytes() for x in served}) == 10   # the broken file's place: another image


def test_empty_folder_is_a_clear_error(tmp_path):
  with pytest.raises(datasets.DatasetError, match="0 image file"):
    datasets.load(f"folder:{tmp_path}", image_size=16)


def test_npz_dataset(tmp_path):
  path = tmp_path / "d.npz"
  np.savez(path, x_train=np.random.default_rng(0).random((20, 8, 8)), x_test=np.zeros((4, 8, 8)))
  ds = datasets.load(f"npz:{path}")
  assert ds.image_shape == (8, 8, 1) and len(ds.train) == 20 and ds.test.inputs([0]).max() == 0
  assert datasets.load(f"npz:{path}", image_size=4).image_shape == (4, 4, 1)
