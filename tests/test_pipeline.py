"""The Grain input pipeline (jaxvq/data/pipeline.py) and image folders read lazily
(sources.FolderSource): batches as pure functions of (seed, step), resume, each process's
rows, augmentation against a NumPy reference, real PNG and JPEG files, corrupt files."""
import io

import ml_collections
import numpy as np
import pytest
from PIL import Image

from jaxvq.data import batches, datasets, load_dataset, pipeline
from jaxvq.data.sources import FolderSource
from jaxvq.errors import ConfigError, DatasetError


def _config(batch_size=32, seed=0, flip=False, crop_padding=0):
  return ml_collections.ConfigDict(dict(batch_size=batch_size, seed=seed, augment_flip=flip,
                                        augment_crop_padding=crop_padding))


@pytest.fixture(scope="module")
def fashion_mnist():
  return load_dataset("fashion_mnist")


def _read(step_batch, start, stop, workers=0, prefetch=2):
  """[(inputs, labels)] of steps start..stop-1 through the pipeline, and the skipped files."""
  with pipeline.TrainBatches(step_batch, start, stop, workers=workers, prefetch=prefetch) as it:
    return list(it), it.skipped_files


# ----------------------------------------------------------------------------- order


def test_batches_of_in_memory_data_are_the_index_samplers(fashion_mnist):
  """Augmentation off: step s's batch is source.inputs(train_indices(s)), byte for byte, read
  from step 0 or resumed at step s, with or without prefetch (468 steps per epoch)."""
  source, config = fashion_mnist.train, _config(batch_size=128)
  step_batch = pipeline.StepBatch.of(source, config, 0, 1)
  for start, stop, prefetch in ((0, 3, 2), (466, 471, 2), (466, 471, 0), (1000, 1002, 4)):
    read, _ = _read(step_batch, start, stop, prefetch=prefetch)
    assert len(read) == stop - start
    for step, (inputs, labels) in zip(range(start, stop), read):
      indices = batches.train_indices(len(source), 128, 0, step)
      np.testing.assert_array_equal(inputs, source.inputs(indices))
      np.testing.assert_array_equal(labels, source.labels(indices))
  assert not np.array_equal(step_batch(467)["inputs"], step_batch(468)["inputs"])


def test_each_process_reads_its_block_of_the_global_batch(fashion_mnist):
  source = fashion_mnist.train
  for augment in (False, True):
    config = _config(batch_size=64, flip=augment, crop_padding=3 * augment)
    whole = pipeline.StepBatch.of(source, config, 0, 1)
    halves = [pipeline.StepBatch.of(source, config, p, 2) for p in (0, 1)]
    for step in (0, 5, 940):
      global_rows = batches.train_indices(len(source), 64, 0, step)
      rows = [pipeline.process_indices(len(source), 64, 0, step, p, 2) for p in (0, 1)]
      assert len(rows[0]) == len(rows[1]) == 32
      np.testing.assert_array_equal(np.concatenate(rows), global_rows)
      parts = [h(step) for h in halves]
      for key in ("inputs", "labels"):
        np.testing.assert_array_equal(np.concatenate([p[key] for p in parts]), whole(step)[key])


# ----------------------------------------------------------------------------- augmentation


def _reference(images, flips, offsets, padding):
  """Each image padded by reflection, cropped at its offset and flipped, one at a time."""
  out = []
  for image, flip, (dy, dx) in zip(images, flips, offsets):
    h, w = image.shape[:2]
    if padding:
      image = np.pad(image, ((padding, padding), (padding, padding), (0, 0)), mode="reflect")
      image = image[dy:dy + h, dx:dx + w]
    out.append(np.fliplr(image) if flip else image)
  return np.stack(out)


def test_augmentation_flips_and_crops_as_the_numpy_reference(fashion_mnist):
  source = fashion_mnist.train
  plain = pipeline.StepBatch.of(source, _config(batch_size=128), 0, 1)
  for flip, padding in ((True, 0), (False, 4), (True, 4)):
    augmented = pipeline.StepBatch.of(source, _config(128, 0, flip, padding), 0, 1)
    for step in (0, 7):
      x, out = plain(step), augmented(step)
      flips, offsets = augmented.augmentation.draws(0, step, 128)
      np.testing.assert_array_equal(out["inputs"],
                                    _reference(x["inputs"], flips, offsets, padding))
      np.testing.assert_array_equal(out["labels"], x["labels"])
      np.testing.assert_array_equal(out["inputs"], augmented(step)["inputs"])   # deterministic
      if flip:
        assert 0.3 < flips.mean() < 0.7
      else:
        assert not flips.any()
      if padding:
        assert offsets.min() == 0 and offsets.max() == 2 * padding and len(np.unique(offsets)) > 5
      changed = [not np.array_equal(a, b) for a, b in zip(out["inputs"], x["inputs"])]
      assert np.mean(changed) > 0.3
  draws = lambda seed, step: pipeline.Augmentation(True, 4).draws(seed, step, 128)
  assert not np.array_equal(draws(0, 0)[1], draws(0, 1)[1])
  assert not np.array_equal(draws(0, 0)[1], draws(1, 0)[1])


def test_augmentation_refuses_what_the_images_cannot_take():
  with pytest.raises(ConfigError, match="augment_crop_padding=28 must be below"):
    pipeline.Augmentation.of(_config(crop_padding=28), (28, 28, 1))
  with pytest.raises(ConfigError, match="a prior's codes"):
    pipeline.Augmentation.of(_config(flip=True), (7, 7))
  assert not pipeline.Augmentation.of(_config(), (7, 7)).enabled


# ----------------------------------------------------------------------------- folders


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory, fashion_mnist):
  """Fashion-MNIST test images 0..39 as files: the even ones PNG, the odd ones JPEG."""
  folder = tmp_path_factory.mktemp("images")
  images = fashion_mnist.test.inputs(np.arange(40))[..., 0]
  for i, image in enumerate(images):
    Image.fromarray(image).save(folder / (f"{i:03d}.png" if i % 2 == 0 else f"{i:03d}.jpg"),
                                quality=95)
  return folder, images


def test_folder_is_indexed_and_decoded_when_read(image_folder, tmp_path):
  folder, images = image_folder
  ds = load_dataset(f"folder:{folder}", image_size=28)
  assert isinstance(ds.train, FolderSource) and (len(ds.train), len(ds.test)) == (36, 4)
  assert ds.image_shape == (28, 28, 3)
  files = sorted(ds.train.paths + ds.test.paths)
  served = np.concatenate([ds.train.inputs(np.arange(36)), ds.test.inputs(np.arange(4))])
  by_file = dict(zip(ds.train.paths + ds.test.paths, served))
  for i, path in enumerate(files):
    image = by_file[path]
    assert np.array_equal(image[..., 0], image[..., 2])   # grey, as RGB
    error = np.abs(image[..., 0].astype(int) - images[i])
    assert error.max() == 0 if path.endswith(".png") else error.mean() < 4
  # Read when asked: a file replaced after loading is served as it is now.
  Image.fromarray(255 - images[0]).save(files[0])
  index = (ds.train.paths + ds.test.paths).index(files[0])
  split, row = (ds.train, index) if index < 36 else (ds.test, index - 36)
  np.testing.assert_array_equal(split.inputs([row])[0, ..., 0], 255 - images[0])
  Image.fromarray(images[0]).save(files[0])
  resized = load_dataset(f"folder:{folder}", image_size=16)
  assert resized.train.inputs([0, 1]).shape == (2, 16, 16, 3)


def _truncated_jpeg(image) -> bytes:
  out = io.BytesIO()
  Image.fromarray(image).save(out, format="JPEG", quality=95)
  return out.getvalue()[:len(out.getvalue()) // 2]


@pytest.fixture
def folder_with_a_corrupt_file(tmp_path, image_folder):
  folder, images = image_folder
  for f in folder.iterdir():
    (tmp_path / f.name).write_bytes(f.read_bytes())
  corrupt = tmp_path / "020_cut.jpg"   # sorts between 020.png and 021.jpg
  corrupt.write_bytes(_truncated_jpeg(images[5]))
  return tmp_path, str(corrupt)


def _split_of(ds, path):
  for split in (ds.train, ds.test):
    if path in split.paths:
      return split, split.paths.index(path)
  raise AssertionError(path)


def test_a_corrupt_file_is_an_error_naming_it(folder_with_a_corrupt_file):
  """Found by the sample decoded at load time, or when its batch is read, in this process
  or in a worker."""
  folder, corrupt = folder_with_a_corrupt_file
  match = "image file .*020_cut.jpg' cannot be decoded .*corrupt_images=skip"
  with pytest.raises(DatasetError, match=match) as e:
    datasets.load(f"folder:{folder}", image_size=28)   # its training split holds the file
  assert "\n" not in str(e.value)
  paths = tuple(sorted(str(f) for f in folder.iterdir()))
  step_batch = pipeline.StepBatch.of(FolderSource(paths, 28), _config(batch_size=len(paths)),
                                     0, 1)
  for workers in (0, 1):
    with pytest.raises(DatasetError, match=match):
      _read(step_batch, 0, 1, workers=workers)


def test_skipped_corrupt_files_are_replaced_by_the_next_and_counted(folder_with_a_corrupt_file):
  folder, corrupt = folder_with_a_corrupt_file
  with pytest.warns(UserWarning, match="skipped the corrupt image file .*020_cut.jpg"):
    ds = datasets.load(f"folder:{folder}", image_size=28, corrupt_images="skip")
  split, row = _split_of(ds, corrupt)
  assert split is ds.train
  images, skipped = split.read([row])
  assert skipped == (corrupt,)
  np.testing.assert_array_equal(images, split.inputs([(row + 1) % len(split)]))
  # Steps of the whole training split: the corrupt file met in each, counted once.
  step_batch = pipeline.StepBatch.of(ds.train, _config(batch_size=len(ds.train)), 0, 1)
  with pytest.warns(UserWarning, match="020_cut.jpg"):
    read, skipped_files = _read(step_batch, 0, 2)
  assert skipped_files == {corrupt} and len(read) == 2


def test_worker_processes_give_the_batches_of_the_main_process(folder_with_a_corrupt_file):
  """Two Grain worker processes decode and augment; the batches are those read in this
  process, the corrupt file skipped in the same places."""
  folder, corrupt = folder_with_a_corrupt_file
  with pytest.warns(UserWarning, match="020_cut.jpg"):
    ds = datasets.load(f"folder:{folder}", image_size=24, corrupt_images="skip")
  step_batch = pipeline.StepBatch.of(ds.train, _config(batch_size=8, flip=True, crop_padding=2),
                                     0, 1)
  with pytest.warns(UserWarning, match="020_cut.jpg"):
    here, skipped_here = _read(step_batch, 3, 11, workers=0)
    there, skipped_there = _read(step_batch, 3, 11, workers=2)
  assert len(here) == len(there) == 8 and skipped_here == skipped_there == {corrupt}
  for (a, la), (b, lb) in zip(here, there):
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(la, lb)


def test_training_reads_a_folder_through_the_pipeline_and_counts_skipped_files(
    tiny_config, folder_with_a_corrupt_file, tmp_path_factory):
  from jaxvq.train import train_and_evaluate  # pylint: disable=g-import-not-at-top
  from jaxvq.train.metrics_writer import read_rows  # pylint: disable=g-import-not-at-top
  folder, corrupt = folder_with_a_corrupt_file
  tiny_config.update(dataset=f"folder:{folder}", image_size=16, corrupt_images="skip",
                     augment_flip=True, num_train_steps=2, log_every_steps=1,
                     eval_every_steps=2, checkpoint_every_steps=2, eval_batch_size=4,
                     num_eval_examples=4, num_image_grid=4)
  workdir = str(tmp_path_factory.mktemp("workdir"))
  with pytest.warns(UserWarning, match="020_cut.jpg"):
    train_and_evaluate(tiny_config, workdir)
  with pytest.warns(UserWarning, match="020_cut.jpg"):   # the sample decoded when loaded
    train = _split_of(datasets.load(f"folder:{folder}", image_size=16, corrupt_images="skip"),
                      corrupt)
  met = [train[1] in batches.train_indices(len(train[0]), 16, 0, s) for s in (0, 1)]
  assert any(met)   # the test means something: a step reads the corrupt file
  rows = read_rows(workdir, "train")
  assert [r.get("skipped_images", 0) for r in rows] == [int(met[0]), 1]
