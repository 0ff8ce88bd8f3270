"""The ImageNet-scale configs for a few steps at batch 2, with their image sizes, downsampling,
channel multipliers, codebooks and grids but narrower layers (the full widths build in
tests/test_training.py; training them here would take minutes a step): on a folder of real
photos (scikit-image's, cropped and saved as PNG and JPEG files) and on mocked TFDS ImageNet,
through to a class-conditional prior over the 32x32 code grids and a sample from it. ImageNet
itself cannot be downloaded here."""
import os

import numpy as np
import pytest
import tensorflow_datasets as tfds
from unittest import mock
from PIL import Image

from jaxvq import config as config_lib
from jaxvq.sampling import sample_images
from jaxvq.tokens.runs import encode_codes
from jaxvq.train import train_and_evaluate
from jaxvq.train.metrics_writer import read_rows

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHORT_RUN = dict(batch_size=2, eval_batch_size=4, num_eval_examples=4, num_train_steps=2,
                 log_every_steps=1, eval_every_steps=2, checkpoint_every_steps=2, num_image_grid=2,
                 num_devices=1)


NARROW = {"vqvae": dict(hidden=16, residual_hidden=8, num_residual_blocks=1, disc_hidden=4,
                        perceptual_widths=(4, 4, 4, 4)),
          "pixelcnn": dict(channels=8, num_layers=2, head_channels=16)}


def _config(name, **overrides):
  config = config_lib.load_file(os.path.join(REPO, "configs", f"{name}.py"))
  config.update({**SHORT_RUN, **overrides})
  config.model.update(NARROW[config.model.name])
  if config.model.get("adversarial_weight"):   # the discriminator acts in the short run
    config.model.disc_start_step = 0
  return config


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory):
  """12 crops of scikit-image's real RGB photos, of several sizes, as PNG and JPEG files."""
  skimage_data = pytest.importorskip("skimage.data")
  folder = tmp_path_factory.mktemp("photos")
  rng = np.random.default_rng(0)
  photos = [skimage_data.astronaut(), skimage_data.chelsea(), skimage_data.coffee(),
            skimage_data.rocket()]
  for i in range(12):
    photo = photos[i % len(photos)]
    h, w = rng.integers(200, min(photo.shape[:2]) + 1, size=2)
    top, left = rng.integers(0, photo.shape[0] - h + 1), rng.integers(0, photo.shape[1] - w + 1)
    suffix = ".png" if i % 2 else ".jpg"
    Image.fromarray(photo[top:top + h, left:left + w]).save(folder / f"photo{i:02d}{suffix}")
  return str(folder)


@pytest.mark.slow
@pytest.mark.parametrize("name, grid", [("vqvae_imagenet128", 32), ("vqvae_f8_256", 32),
                                        ("vqgan_imagenet128", 16)])
def test_imagenet_scale_vqvae_trains_on_a_folder_of_real_photos(name, grid, photo_folder,
                                                                 tmp_path):
  config = _config(name, dataset=f"folder:{photo_folder}")
  config.model.quantizer.kmeans_init_batches = 1
  final = train_and_evaluate(config, str(tmp_path))
  assert np.isfinite(final["normalized_mse"]) and final["normalized_mse"] > 0
  metadata = encode_codes(str(tmp_path))
  assert metadata["grid_shape"] == [grid, grid]
  codes = np.load(tmp_path / "codes" / "train.npz")["codes"]
  assert codes.shape[1:] == (grid, grid) and codes.max() < config.model.quantizer.num_codes


@pytest.mark.slow
def test_imagenet128_and_its_prior_through_mocked_tfds_imagenet(tmp_path):
  vqvae_dir, prior_dir = str(tmp_path / "vqvae"), str(tmp_path / "prior")
  with tfds.testing.mock_data(num_examples=8, policy=tfds.testing.MockPolicy.USE_CODE), \
       mock.patch.object(tfds.core.DatasetBuilder, "is_prepared", return_value=True):
    config = _config("vqvae_imagenet128")
    config.model.quantizer.kmeans_init_batches = 1
    train_and_evaluate(config, vqvae_dir)
    metadata = encode_codes(vqvae_dir)
    assert metadata["grid_shape"] == [32, 32] and metadata["num_classes"] == 1000
    prior = _config("pixelcnn_imagenet128", dataset=f"codes:{vqvae_dir}")
    final = train_and_evaluate(prior, prior_dir)
    assert 0 < final["bits_per_code"]
    pictures, codes, _ = sample_images(prior_dir, num_samples=1, label=7)   # decodes: ImageNet
  assert pictures.shape == (1, 128, 128, 3) and codes.shape == (1, 32, 32)


@pytest.mark.slow
def test_vqgan_imagenet128_trains_through_mocked_tfds_imagenet(tmp_path):
  """The VQGAN losses at ImageNet's shapes: L1, the random network's perceptual loss, the
  discriminator (3 layers: a 14x14 grid of patch logits) and LeCam, in the train rows."""
  with tfds.testing.mock_data(num_examples=8, policy=tfds.testing.MockPolicy.USE_CODE), \
       mock.patch.object(tfds.core.DatasetBuilder, "is_prepared", return_value=True):
    config = _config("vqgan_imagenet128")
    config.model.quantizer.kmeans_init_batches = 1
    final = train_and_evaluate(config, str(tmp_path))
  assert np.isfinite(final["l1"]) and np.isfinite(final["perceptual"])
  train = read_rows(str(tmp_path), "train")[-1]
  assert train["disc_active"] == 1.0 and all(np.isfinite(train[k]) for k in (
      "d_loss", "g_loss", "lecam_penalty", "adversarial_weight", "logits_real", "logits_fake"))
