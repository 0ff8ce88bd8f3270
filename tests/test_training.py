import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxvq import config as config_lib
from jaxvq.data import batches
from jaxvq.errors import ConfigError
from jaxvq.priors.base import Prior
from jaxvq.registry import build_model, model_class
from jaxvq.ops import vq
from jaxvq.train import load_run, steps, train_and_evaluate
from jaxvq.train.experiment import learning_rate_schedule
from jaxvq.train.metrics_writer import read_rows

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _rows(workdir, split):
  return read_rows(str(workdir), split)


@pytest.mark.slow
def test_short_vqvae_training_on_fashion_mnist_lowers_the_loss(tiny_config, tmp_path):
  tiny_config.num_devices = 0   # all 8 devices: the batch and the padded test batches split
  tiny_config.num_train_steps = 60
  tiny_config.log_every_steps = 10
  tiny_config.eval_every_steps = 30
  final = train_and_evaluate(tiny_config, str(tmp_path))
  train = _rows(tmp_path, "train")
  assert train[-1]["loss"] < 0.8 * train[0]["loss"]
  test = _rows(tmp_path, "test")
  assert test[-1]["normalized_mse"] < test[0]["normalized_mse"]
  for key in ("perplexity", "codebook_usage", "normalized_mse", "mse", "commitment_loss"):
    assert key in final and key in test[-1] and key in train[-1]
  assert 0 < final["codebook_usage"] <= 1
  assert os.path.exists(tmp_path / "config.json")
  assert os.path.exists(tmp_path / "images" / "reconstructions_000060.png")


@pytest.mark.slow
@pytest.mark.parametrize("name,architecture,dataset", [
    ("autoencoder", "conv", "mnist"), ("vae", "mlp", "binarized_mnist"),
    ("vae", "conv_vector", "binarized_mnist"), ("vae", "conv", "fashion_mnist")])
def test_ae_and_vae_train_end_to_end_and_write_samples(tiny, tmp_path, name, architecture, dataset):
  tiny_config = tiny(name)
  tiny_config.model.architecture = architecture
  tiny_config.dataset = dataset
  if name == "vae":
    tiny_config.model.likelihood = "bernoulli" if dataset == "binarized_mnist" else "gaussian"
  final = train_and_evaluate(tiny_config, str(tmp_path))
  assert os.path.exists(tmp_path / "images" / "samples_000020.png")
  if name == "vae":   # mlp and conv_vector: a latent vector; conv: a 7x7 grid of them
    latent = build_model(tiny_config.model, (28, 28, 1), data_variance=1.0, seed=0).latent_shape
    grid = (7, 7) if architecture == "conv" else ()
    assert latent == grid + (tiny_config.model.latent_dim,)
  if name == "vae":
    assert final["nll_iwae"] <= final["neg_elbo"] + 1e-3 and final["bits_per_dim_iwae"] > 0
    assert {"kl", "reconstruction_nll", "bits_per_dim"} <= set(final)
  if dataset == "binarized_mnist":  # Bernoulli NLL of 784 binary pixels
    assert 0 < final["neg_elbo"] < 784 * np.log(2) * 1.5


@pytest.mark.slow
def test_resume_after_checkpoint_gives_the_identical_state(tiny_config, trained_vqvae, tmp_path):
  straight = trained_vqvae.workdir   # tiny_config's 20 steps, straight (tests/conftest.py)
  resumed = str(tmp_path / "resumed")
  tiny_config.num_train_steps = 10
  train_and_evaluate(tiny_config, resumed)
  tiny_config.num_train_steps = 20
  train_and_evaluate(tiny_config, resumed)

  states = [load_run(d, step=20).state for d in (straight, resumed)]
  for a, b in zip(jax.tree.leaves(states[0]), jax.tree.leaves(states[1])):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  assert _rows(straight, "test") == _rows(resumed, "test")
  assert [r["step"] for r in _rows(resumed, "train")] == [5, 10, 15, 20]


def test_data_order_is_a_function_of_seed_and_step():
  a = batches.train_indices(100, 10, seed=3, step=12)
  np.testing.assert_array_equal(a, batches.train_indices(100, 10, seed=3, step=12))
  epoch = np.concatenate([batches.train_indices(100, 10, 3, s) for s in range(10)])
  np.testing.assert_array_equal(np.sort(epoch), np.arange(100))
  assert not np.array_equal(epoch, np.concatenate(
      [batches.train_indices(100, 10, 3, s) for s in range(10, 20)]))


@pytest.mark.slow
@pytest.mark.parametrize("codebook_update", ["gradient", "ema"])
def test_eight_device_sharded_step_equals_one_device_step(tiny_config, assert_devices_agree,
                                                          codebook_update):
  tiny_config.model.quantizer.codebook_update = codebook_update
  tiny_config.model.quantizer.restart_every_steps = 2
  assert_devices_agree(tiny_config, num_steps=3)


def test_batch_size_that_does_not_divide_the_devices_is_an_error(tiny_config, experiment):
  tiny_config.batch_size, tiny_config.num_devices = 12, 0
  with pytest.raises(ValueError, match="does not divide evenly over 8 devices"):
    experiment(tiny_config)


def _vqvae(tiny_config):
  return build_model(tiny_config.model, (28, 28, 1), data_variance=0.1, seed=0)


@pytest.mark.slow
def test_vqvae_codebook_gets_gradient_only_from_the_codebook_loss(tiny_config):
  model = _vqvae(tiny_config)
  graphdef, params = nnx.split(model)
  x = jax.random.uniform(jax.random.key(0), (4, 28, 28, 1))

  def grads(weights):
    def loss(p):
      m = nnx.merge(graphdef, p)
      z_e = m.encoder(x)
      q = vq.quantize(z_e, m.quantizer.codebook.vectors[...])
      recon = jnp.mean((m.decoder(q.quantized) + 0.5 - x) ** 2) / m.data_variance
      return weights[0] * recon + weights[1] * q.codebook_loss + weights[2] * q.commitment_loss
    return jax.jit(jax.grad(loss))(params)

  full = jax.jit(jax.grad(lambda p: nnx.merge(graphdef, p)(x, None).loss))(params)
  codes = lambda g: g["quantizer"]["codebook"]["vectors"][...]
  np.testing.assert_allclose(codes(full), codes(grads((0, 1, 0))), rtol=1e-5)
  np.testing.assert_allclose(codes(full), codes(grads((1, 1, 0.25))), rtol=1e-5)
  encoder = lambda g: jax.tree.leaves(g["encoder"])
  for a, b in zip(encoder(full), encoder(grads((1, 0, 0.25)))):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-8)
  assert all(not np.any(g) for g in encoder(grads((0, 1, 0))))   # codebook loss: no encoder grad
  assert any(np.any(g) for g in encoder(grads((0, 0, 1))))       # commitment loss: encoder grad


def test_tokenizer_round_trip(tiny_config):
  model = _vqvae(tiny_config)
  x = jax.random.uniform(jax.random.key(0), (2, 28, 28, 1))
  indices = model.encode_to_indices(x)
  assert indices.shape == (2, 7, 7) and indices.dtype == jnp.int32
  out = model(x, None)
  np.testing.assert_array_equal(indices, out.internals.indices)
  np.testing.assert_allclose(model.decode_from_indices(indices), out.reconstruction, atol=1e-5)


def _config_names():
  """Every config file; the priors over the large code grids of CIFAR-10 and ImageNet (slow to
  trace) marked slow."""
  names = sorted(f for f in os.listdir(os.path.join(REPO, "configs"))
                 if f.endswith(".py") and not f.startswith("_"))
  large_prior = lambda f: not f.startswith(("vqvae", "vae", "ae_")) and (
      "imagenet" in f or "cifar" in f)
  return [pytest.param(f, marks=pytest.mark.slow) if large_prior(f) else f for f in names]


@pytest.mark.parametrize("name", _config_names())
def test_every_config_loads_and_builds_its_model(name):
  config = config_lib.load_file(os.path.join(REPO, "configs", name))
  cifar, imagenet = "cifar" in config.dataset, "imagenet" in config.dataset
  size = config.image_size or (128 if imagenet else 32 if cifar else 28)
  shape = (size, size, 3 if cifar or imagenet else 1)
  prior = issubclass(model_class(config.model.name), Prior)
  if prior:  # a prior takes K and its sizes from the codes
    config.model.update(num_codes=512, num_classes=10, image_dims=int(np.prod(shape)))
    shape = (32, 32) if imagenet else (8, 8) if cifar else (7, 7)
  if config.model.name == "classifier":  # K from the dataset's labels
    config.model.num_classes = 10
  inputs = jnp.zeros((2,) + shape, jnp.int32 if len(shape) == 2 else jnp.float32)
  variance = None if prior else 0.1
  out = jax.eval_shape(lambda: build_model(config.model, shape, data_variance=variance, seed=0)(
      inputs, jax.random.key(0), jnp.zeros((2,), jnp.int32)))
  assert out.loss.shape == ()
  if not prior and config.model.name != "classifier":
    assert out.reconstruction.shape == (2,) + shape


@pytest.mark.slow
def test_command_line_trains_and_resumes(tmp_path):
  cmd = [sys.executable, "train.py", "--config=configs/tiny.py", f"--workdir={tmp_path}",
         "--config.num_train_steps=4", "--config.eval_every_steps=4", "--config.log_every_steps=2",
         "--config.num_devices=1"]
  subprocess.run(cmd, cwd=REPO, check=True, capture_output=True)
  cmd[4] = "--config.num_train_steps=6"
  done = subprocess.run(cmd, cwd=REPO, check=True, capture_output=True, text=True)
  assert "resumed from the checkpoint of step 4" in done.stdout
  assert [r["step"] for r in _rows(tmp_path, "train")] == [2, 4, 6]
  assert json.load(open(tmp_path / "config.json"))["num_train_steps"] == 6
  assert "step 6/6  loss " in done.stdout and "test at step 6 (400 examples): loss " in done.stdout


def test_cosine_learning_rate_decays_to_zero_over_the_run(tiny_config):
  tiny_config.learning_rate, tiny_config.num_train_steps = 1e-3, 100
  assert learning_rate_schedule(tiny_config) == 1e-3   # the default: constant
  tiny_config.learning_rate_schedule = "cosine"
  schedule = learning_rate_schedule(tiny_config)
  np.testing.assert_allclose([schedule(0), schedule(50), schedule(100)], [1e-3, 5e-4, 0.0],
                             atol=1e-9)
  tiny_config.learning_rate_schedule = "linear"
  with pytest.raises(ConfigError, match="learning_rate_schedule='linear': must be one of"):
    config_lib.check(tiny_config)


def test_a_cosine_run_cannot_resume_with_another_length(tiny_config):
  saved = json.loads(tiny_config.to_json_best_effort())
  tiny_config.num_train_steps += 10
  assert config_lib.differences(saved, tiny_config) == []   # constant: may run longer
  tiny_config.learning_rate_schedule = saved["learning_rate_schedule"] = "cosine"
  assert [d.split(":")[0] for d in config_lib.differences(saved, tiny_config)] == [
      "num_train_steps"]


def test_the_vqvae_needs_a_latent_grid(tiny_config):
  tiny_config.model.architecture = "conv_vector"   # a key the VQ-VAE's section does not have
  with pytest.raises(ConfigError, match="'model.architecture' is not read by this run"):
    config_lib.check(tiny_config)
