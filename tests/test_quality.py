"""The quality metrics' math on known cases, the feature extractors, and `jaxvq quality`."""
import json
import os
import re
import shutil
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg
from flax import nnx

from jaxvq import quality
from jaxvq.errors import ConfigError, DatasetError, RunError
from jaxvq.quality import metrics
from jaxvq.quality.measure import Reference, measure
from jaxvq.quality.sources import ImageSet, code_frequencies

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def random_covariance(rng, dim):
  a = rng.normal(size=(dim, dim))
  return a @ a.T / dim + 0.1 * np.eye(dim)


def test_fid_of_a_set_against_itself_is_zero():
  features = np.random.default_rng(0).normal(size=(500, 16))
  assert metrics.fid(features, features) == pytest.approx(0.0, abs=1e-8)
  assert metrics.fid(features, features + 1.0) == pytest.approx(16.0, rel=1e-8)  # ||mu||^2


def test_frechet_distance_matches_the_closed_form():
  rng = np.random.default_rng(1)
  mean1, mean2 = rng.normal(size=4), rng.normal(size=4)
  # Diagonal covariances: d^2 = ||mu1 - mu2||^2 + sum (sqrt(s1) - sqrt(s2))^2.
  s1, s2 = rng.uniform(0.5, 2.0, 4), rng.uniform(0.5, 2.0, 4)
  expected = np.sum((mean1 - mean2) ** 2) + np.sum((np.sqrt(s1) - np.sqrt(s2)) ** 2)
  assert metrics.frechet_distance(mean1, np.diag(s1), mean2, np.diag(s2)) == pytest.approx(
      expected, rel=1e-10)
  # Full covariances that do not commute: Tr((S1 S2)^(1/2)) by scipy's matrix square root.
  cov1, cov2 = random_covariance(rng, 4), random_covariance(rng, 4)
  expected = (np.sum((mean1 - mean2) ** 2) + np.trace(cov1 + cov2)
              - 2 * np.trace(scipy.linalg.sqrtm(cov1 @ cov2)).real)
  assert metrics.frechet_distance(mean1, cov1, mean2, cov2) == pytest.approx(expected, rel=1e-8)


def test_fid_of_samples_approaches_the_distance_of_their_gaussians():
  rng = np.random.default_rng(2)
  mean1, mean2 = rng.normal(size=3), rng.normal(size=3)
  cov1, cov2 = random_covariance(rng, 3), random_covariance(rng, 3)
  exact = metrics.frechet_distance(mean1, cov1, mean2, cov2)
  a = rng.multivariate_normal(mean1, cov1, size=200_000)
  b = rng.multivariate_normal(mean2, cov2, size=200_000)
  assert metrics.fid(a, b) == pytest.approx(exact, rel=0.02)


def reference_ssim(x, y):
  """SSIM of two [H, W] images by its definition, window by window (Wang et al. 2004)."""
  window = np.outer(metrics.gaussian_window(), metrics.gaussian_window())
  size = len(window)
  c1, c2 = 0.01 ** 2, 0.03 ** 2
  values = []
  for i in range(x.shape[0] - size + 1):
    for j in range(x.shape[1] - size + 1):
      a, b = x[i:i + size, j:j + size], y[i:i + size, j:j + size]
      mu_a, mu_b = np.sum(window * a), np.sum(window * b)
      var_a, var_b = np.sum(window * (a - mu_a) ** 2), np.sum(window * (b - mu_b) ** 2)
      cov = np.sum(window * (a - mu_a) * (b - mu_b))
      values.append((2 * mu_a * mu_b + c1) * (2 * cov + c2)
                    / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2)))
  return np.mean(values)


def test_ssim_of_an_image_with_itself_is_one_and_matches_the_definition():
  rng = np.random.default_rng(3)
  x = rng.uniform(size=(2, 16, 16, 1)).astype(np.float32)
  y = np.clip(x + rng.normal(0, 0.1, x.shape), 0, 1).astype(np.float32)
  assert metrics.ssim(x, x) == pytest.approx(1.0, abs=1e-6)
  per_image = np.asarray(metrics.ssim_per_image(x, y))
  for n in range(2):
    assert per_image[n] == pytest.approx(reference_ssim(x[n, ..., 0], y[n, ..., 0]), abs=1e-5)
  skimage_metrics = pytest.importorskip("skimage.metrics")
  expected = skimage_metrics.structural_similarity(
      x[0, ..., 0], y[0, ..., 0], data_range=1.0, gaussian_weights=True, sigma=1.5,
      use_sample_covariance=False)
  assert per_image[0] == pytest.approx(expected, abs=1e-4)


def test_psnr_of_a_known_error():
  x = np.full((3, 8, 8, 1), 0.5)
  assert metrics.psnr(x + 0.1, x) == pytest.approx(20.0)   # MSE 0.01
  assert metrics.psnr(x + 0.01, x) == pytest.approx(40.0)


def test_precision_and_recall_of_a_set_and_of_far_apart_sets():
  rng = np.random.default_rng(4)
  real = rng.normal(size=(300, 8)).astype(np.float32)
  assert metrics.precision_recall(real, real) == (1.0, 1.0)
  far = real + 100.0
  assert metrics.precision_recall(real, far) == (0.0, 0.0)
  # Half the generated points on the real manifold: precision 1/2; they cover part of it.
  half = np.concatenate([real[:150], far[150:]])
  precision, recall = metrics.precision_recall(real, half)
  assert precision == pytest.approx(0.5)
  assert 0.0 < recall < 1.0


def test_marginal_code_frequencies_are_per_position():
  codes = np.array([[[0, 1]], [[0, 2]], [[0, 1]], [[0, 1]]])   # [4, 1, 2]
  frequencies = code_frequencies(codes, 3)
  np.testing.assert_allclose(frequencies[0, 0], [1, 0, 0])
  np.testing.assert_allclose(frequencies[0, 1], [0, 0.75, 0.25])


class RandomRGBNet(nnx.Module):
  """Another extractor than jaxvq's classifier, for RGB images, with random weights (as a
  user's Inception network would be, with their weights)."""

  def __init__(self, rngs):
    self.conv = nnx.Conv(3, 8, (3, 3), strides=2, rngs=rngs)
    self.dense = nnx.Linear(8, 12, rngs=rngs)

  def __call__(self, x):
    return self.dense(jnp.mean(nnx.relu(self.conv(x)), axis=(1, 2)))


def test_a_user_extractor_plugs_in():
  net = RandomRGBNet(nnx.Rngs(0))
  extractor = quality.FunctionExtractor(net, image_shape=(16, 16, 3), feature_dim=12)
  rng = np.random.default_rng(5)
  real = rng.integers(0, 256, (40, 16, 16, 3), dtype=np.uint8)
  features, logits = extractor(real, batch_size=16)
  assert features.shape == (40, 12) and logits is None
  np.testing.assert_allclose(extractor(real.astype(np.float32) / 255.0)[0], features, atol=1e-5)
  reference = Reference("random", features, np.zeros(40, np.int32), None)
  same = measure(ImageSet("same", real), extractor, reference)
  assert same["fid"] == pytest.approx(0.0, abs=1e-6)
  assert (same["precision"], same["recall"]) == (1.0, 1.0)
  darker = measure(ImageSet("darker", real // 4), extractor, reference)
  assert darker["fid"] > 0.0
  with pytest.raises(DatasetError, match="are \\(28, 28, 1\\)"):
    extractor(np.zeros((4, 28, 28, 1), np.uint8))


@pytest.fixture(scope="module")
def feature_workdir(tmp_path_factory):
  """A classifier of real Fashion-MNIST trained for a few steps."""
  workdir = str(tmp_path_factory.mktemp("features") / "fashion_mnist")
  quality.train_feature_network("fashion_mnist", workdir, num_steps=30, batch_size=64,
                                feature_dim=16, num_devices=1)
  return workdir


def run_quality(*flags):
  return subprocess.run([sys.executable, "-m", "jaxvq", "quality", *flags], cwd=REPO,
                        capture_output=True, text=True, timeout=900)


@pytest.mark.slow
def test_class_accuracy_of_the_test_split_is_the_classifiers_evaluation(feature_workdir):
  done = run_quality(f"--features={feature_workdir}", "--images=dataset:fashion_mnist:test")
  assert done.returncode == 0, done.stderr
  result = json.loads(done.stdout.strip().splitlines()[-1])
  (row,) = result["rows"]
  description = quality.read_description(feature_workdir)
  assert row["num_images"] == 10000 == description["num_test_images"]
  assert row["class_accuracy"] == description["test_accuracy"]
  assert 0.3 < row["class_accuracy"] < 1.0   # a few steps: better than chance, not perfect
  assert row["fid"] == pytest.approx(0.0, abs=1e-6)   # the reference itself
  assert "| dataset:fashion_mnist:test | 10000 |" in done.stdout


@pytest.mark.slow
def test_refuses_too_few_images_and_other_shapes(feature_workdir):
  done = run_quality(f"--features={feature_workdir}", "--images=dataset:fashion_mnist:test",
                     "--num_images=10")
  assert done.returncode == 2
  assert done.stderr.strip().count("\n") == 0
  assert "--num_images=10 is too few" in done.stderr
  extractor = quality.load_feature_extractor(feature_workdir)
  reference = Reference("fashion_mnist", np.zeros((17, 16)), np.zeros(17), None)
  with pytest.raises(DatasetError) as error:
    measure(ImageSet("rgb", np.zeros((17, 32, 32, 3), np.uint8)), extractor, reference)
  assert "(32, 32, 3)" in str(error.value) and "\n" not in str(error.value)
  with pytest.raises(DatasetError, match="gave 5 images, not the 17"):
    measure(ImageSet("five", np.zeros((5, 28, 28, 1), np.uint8)), extractor, reference)


@pytest.mark.slow
def test_the_feature_network_resumes_exactly(tmp_path):
  """It is a run of the training loop: 3 steps, then resumed to 6, equals 6 straight."""
  from jaxvq.train import load_run  # pylint: disable=g-import-not-at-top
  straight, resumed = str(tmp_path / "straight"), str(tmp_path / "resumed")
  train = lambda workdir, steps: quality.train_feature_network(
      "fashion_mnist", workdir, num_steps=steps, batch_size=32, feature_dim=8, num_devices=1)
  expected = train(straight, 6)
  train(resumed, 3)
  assert train(resumed, 6) == {**expected, "run_id": load_run(resumed).run_id}
  assert expected["step"] == 6 and expected["num_test_images"] == 10000
  a, b = load_run(straight), load_run(resumed)
  assert a.config.model.name == "classifier" and b.step == 6
  jax.tree.map(np.testing.assert_array_equal, (a.state.params, a.state.opt_state),
               (b.state.params, b.state.opt_state))


@pytest.mark.slow
def test_a_damaged_description_or_a_workdir_of_no_classifier_is_refused_in_one_line(
    feature_workdir, tmp_path):
  workdir = str(tmp_path / "features")
  shutil.copytree(feature_workdir, workdir)
  path = os.path.join(workdir, "features.json")
  good = open(path).read()
  rebuild = (f"`jaxvq features --dataset=fashion_mnist --workdir={workdir} --num_steps=30 "
             f"--batch_size=64 --feature_dim=16`")

  def refused(match, directory=workdir):
    with pytest.raises(RunError, match=match) as error:
      quality.load_feature_extractor(directory)
    assert "\n" not in str(error.value)
    return str(error.value)

  for damaged in ("{", "[]", json.dumps({**json.loads(good), "feature_dim": "16"})):
    with open(path, "w") as f:
      f.write(damaged)
    assert rebuild in refused(re.escape(f"{path} is damaged"))
  with open(path, "w") as f:
    json.dump({**json.loads(good), "step": 20}, f)
  assert "step 20 in features.json, 30 in the run" in refused("does not describe the run")
  done = run_quality(f"--features={workdir}", "--images=dataset:fashion_mnist:test")
  assert done.returncode == 2 and done.stderr.strip().count("\n") == 0
  assert "does not describe the run" in done.stderr
  os.remove(path)
  assert rebuild in refused(re.escape(f"{path} is missing"))
  config = json.load(open(os.path.join(workdir, "config.json")))
  config["model"]["name"] = "vqvae"
  with open(os.path.join(workdir, "config.json"), "w") as f:
    json.dump(config, f)
  refused("holds a vqvae run, not a feature network")
  # A feature network of an earlier jaxvq: its own checkpoint layout, no config.json.
  old = tmp_path / "old"
  (old / "checkpoints" / "3000").mkdir(parents=True)
  (old / "features.json").write_text(good)
  assert ("retrain it with `jaxvq features --dataset=fashion_mnist --workdir=NEW_DIR "
          "--num_steps=30 --batch_size=64 --feature_dim=16`") in refused(
              "a feature network of an earlier jaxvq", str(old))


@pytest.mark.slow
def test_a_priors_final_evaluation_writes_a_fid_row(tiny, trained_vqvae, feature_workdir,
                                                    tmp_path):
  from jaxvq.train import train_and_evaluate  # pylint: disable=g-import-not-at-top
  from jaxvq.train.metrics_writer import read_rows  # pylint: disable=g-import-not-at-top
  # The session's tiny VQ-VAE and its codes (tests/conftest.py), only read here.
  vqvae_dir, prior_dir = trained_vqvae.workdir, str(tmp_path / "prior")
  prior_config = tiny("pixelcnn")
  prior_config.dataset = f"codes:{vqvae_dir}"
  prior_config.model.class_conditional = True
  prior_config.update(quality_features=feature_workdir, final_fid_images=100)
  with pytest.raises(ConfigError, match="final_evaluations=jaxvq.quality.final_evaluations"):
    train_and_evaluate(prior_config, prior_dir)   # the library asks for the measure
  assert not os.path.exists(prior_dir)
  train_and_evaluate(prior_config, prior_dir,
                     final_evaluations=quality.final_evaluations(prior_config))
  (row,) = read_rows(prior_dir, "fid")
  assert row["step"] == 20 and row["num_images"] == 100
  assert row["fid"] > 0 and 0 <= row["precision"] <= 1 and 0 <= row["class_accuracy"] <= 1
  # The row is the quality command's measurement of the same samples.
  again = quality.measure_run(prior_dir, feature_workdir, 100)
  assert again["fid"] == pytest.approx(row["fid"], rel=1e-6)
  picture = tmp_path / "side_by_side.png"
  (vqvae_row,) = quality.measure_sources([f"reconstructions:{vqvae_dir}"],
                                         quality.load_feature_extractor(feature_workdir), 100,
                                         picture=str(picture), picture_columns=5)
  assert 0 < vqvae_row["ssim"] < 1 and vqvae_row["psnr"] > 5
  # Without the feature network: the same PSNR and SSIM, and nothing else.
  done = run_quality(f"--images=reconstructions:{vqvae_dir}", "--num_images=100")
  assert done.returncode == 0, done.stderr
  alone = json.loads(done.stdout.strip().splitlines()[-1])
  assert alone["features"] is None and alone["dataset"] is None
  (alone_row,) = alone["rows"]
  assert set(alone_row) == {"source", "num_images", "psnr", "ssim"}
  assert (alone_row["source"], alone_row["num_images"]) == (vqvae_row["source"], 100)
  for key in ("psnr", "ssim"):
    assert alone_row[key] == pytest.approx(vqvae_row[key], rel=1e-6)
  assert "| images | N | PSNR (dB) | SSIM |" in done.stdout
  from PIL import Image  # pylint: disable=g-import-not-at-top
  assert Image.open(picture).size == (5 * 29 + 1, 2 * 29 + 1)   # originals, reconstructions


@pytest.mark.slow
def test_a_feature_network_of_resized_images_is_compared_with_the_test_split_resized_alike():
  from jaxvq.data import load_dataset
  from jaxvq.quality.features import features_command, features_config
  from jaxvq.quality.measure import real_reference
  config = features_config("fashion_mnist", image_size=32)
  assert config.image_size == 32
  assert features_command(config, "w").endswith("--workdir=w --image_size=32")
  extractor = quality.FunctionExtractor(lambda x: x.reshape(len(x), -1)[:, :8],
                                        image_shape=(32, 32, 1), feature_dim=8)
  reference = real_reference(extractor, "fashion_mnist", 20)
  resized = load_dataset("fashion_mnist", image_size=32).test.inputs(np.arange(20))
  np.testing.assert_array_equal(reference.features,
                                resized.reshape(20, -1)[:, :8].astype(np.float32) / 255.0)


def test_side_by_side_puts_the_originals_first_and_scales_uint8_images():
  from jaxvq import figures  # pylint: disable=g-import-not-at-top
  originals = np.full((4, 2, 2, 1), 255, np.uint8)
  a, b = np.zeros((4, 2, 2, 1), np.float32), np.full((4, 2, 2, 1), 0.5, np.float32)
  rows = figures.side_by_side([a, b], originals, columns=3)
  np.testing.assert_array_equal(rows[:, 0, 0, 0], [1, 1, 1, 0, 0, 0, 0.5, 0.5, 0.5])
  with pytest.raises(ConfigError, match="png"):
    quality.measure_sources(["dataset:fashion_mnist:test"], None, 10, dataset="x",
                            picture="out.jpg")


def mean_psnr(images, references):
  """10 log10(1 / MSE) per image in [0, 1], averaged: PSNR by its definition."""
  mse = np.mean((np.asarray(images, np.float64) - references) ** 2, axis=(1, 2, 3))
  return float(np.mean(10 * np.log10(1.0 / mse)))


def test_reconstructions_are_measured_without_a_feature_network(trained_vqvae, tmp_path):
  from PIL import Image  # pylint: disable=g-import-not-at-top
  from jaxvq.quality.measure import real_reference  # pylint: disable=g-import-not-at-top
  from jaxvq.quality.sources import load_images  # pylint: disable=g-import-not-at-top
  source = f"reconstructions:{trained_vqvae.workdir}"
  picture = tmp_path / "alone.png"
  (row,) = quality.measure_sources([source], None, 20, picture=str(picture), picture_columns=4)
  assert set(row) == {"source", "num_images", "psnr", "ssim"} and row["num_images"] == 20
  images = load_images(source, 20)   # the first 20 test images, and their reconstructions
  assert row["psnr"] == pytest.approx(
      mean_psnr(images.images, images.references.astype(np.float64) / 255.0), rel=1e-5)
  # The with-features path (here a trivial extractor of the pixels) on the same images.
  pixels = quality.FunctionExtractor(lambda x: x.reshape(len(x), -1)[:, 300:304],
                                     image_shape=(28, 28, 1), feature_dim=4)
  with_features = measure(images, pixels, real_reference(pixels, "fashion_mnist", 20))
  assert {k: with_features[k] for k in row} == row and "fid" in with_features
  assert Image.open(picture).size == (4 * 29 + 1, 2 * 29 + 1)   # originals, reconstructions
  assert quality.format_table([row]).splitlines()[0] == "| images | N | PSNR (dB) | SSIM |"
  with pytest.raises(DatasetError, match="has 10000 images, fewer than --num_images=10001"):
    quality.measure_sources([source], None, 10001)


def test_without_features_other_sources_are_refused_in_one_line_before_any_work(tmp_path):
  missing = str(tmp_path / "nowhere")
  for other in (f"prior:{missing}", f"vae:{missing}", "dataset:fashion_mnist:test"):
    # The reconstructions source before it is not loaded (its workdir does not exist).
    with pytest.raises(ConfigError) as error:
      quality.measure_sources([f"reconstructions:{missing}", other], None, 10)
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(f"--images={other} needs --features=DIR")
    assert "`jaxvq features`" in message
  done = run_quality(f"--images=marginal:{missing}", "--num_images=10")
  assert done.returncode == 2 and done.stderr.strip().count("\n") == 0, done.stderr
  assert f"error: --images=marginal:{missing} needs --features=DIR" in done.stderr
