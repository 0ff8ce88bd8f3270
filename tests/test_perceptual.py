"""Perceptual losses (jaxvq/models/perceptual.py): LPIPS's distance by hand, the seeded random
network held fixed in the model state, the classifier of `jaxvq features` and any feature
extractor as the network, lpips-nnx as far as it goes without its download, and the networks
that are refused."""
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxvq import config as config_lib
from jaxvq.errors import ConfigError, RunError
from jaxvq.models import perceptual
from jaxvq.models.base import TrainedModel
from jaxvq.models.classifier import Classifier
from jaxvq.ops.adversarial import feature_distance
from jaxvq.quality import FunctionExtractor, load_feature_extractor, train_feature_network
from jaxvq.registry import build_model
from jaxvq.train import train_and_evaluate
from jaxvq.train.experiment import setup
from jaxvq.train.run import load_data

SHAPE = (28, 28, 1)


def _images(n=3, seed=0, shape=SHAPE):
  return jax.random.uniform(jax.random.key(seed), (n,) + shape)


def _config(tiny_config, network="random", **model):
  tiny_config.model.update(perceptual_weight=1.0, perceptual_network=network,
                           perceptual_widths=(4, 8), **model)
  return tiny_config


def _model(config):
  return build_model(config.model, SHAPE, data_variance=0.1, seed=0)


def test_feature_distance_is_lpips_with_unit_weights_by_hand():
  rng = np.random.default_rng(0)
  a = [rng.normal(size=(2, 4, 4, 3)), rng.normal(size=(2, 5))]
  b = [rng.normal(size=(2, 4, 4, 3)), rng.normal(size=(2, 5))]
  unit = lambda f: f / np.linalg.norm(f, axis=-1, keepdims=True)
  expected = sum(np.mean(np.sum((unit(u) - unit(v)) ** 2, axis=-1).reshape(2, -1), axis=1)
                 for u, v in zip(a, b))
  np.testing.assert_allclose(feature_distance([jnp.asarray(f) for f in a],
                                              [jnp.asarray(f) for f in b]), expected, rtol=1e-5)
  assert np.all(np.asarray(feature_distance(a, a)) < 1e-6)


def test_the_random_network_is_seeded_fixed_state_and_the_loss_adds_to_the_reconstruction(
    tiny_config):
  config = _config(tiny_config)
  model = _model(config)
  _, params, rest = nnx.split(model, nnx.Param, ...)
  assert "perceptual" not in params and "perceptual" in rest
  frozen = jax.tree.leaves(nnx.state(model.perceptual, perceptual.Frozen))
  assert len(frozen) == 8 and not jax.tree.leaves(nnx.state(model.perceptual, nnx.Param))
  # Drawn from perceptual_seed alone: the same whatever the model's seed.
  def seeded(seed, perceptual_seed):
    config.model.perceptual_seed = perceptual_seed
    return jax.tree.leaves(nnx.state(build_model(config.model, SHAPE, data_variance=0.1,
                                                 seed=seed).perceptual))

  for a, b in zip(frozen, seeded(5, 0)):
    np.testing.assert_array_equal(a, b)
  assert not all(np.array_equal(a, b) for a, b in zip(frozen, seeded(0, 1)))
  maps = jax.eval_shape(model.perceptual.features, _images())
  assert [m.shape for m in maps] == [(3, 28, 28, 4), (3, 14, 14, 8)]

  x, key = _images(), jax.random.key(0)
  out, distance = jax.jit(lambda x: (model(x, key), model.perceptual(
      model.decoder(model.quantizer(model.encoder(x), key, False).quantized) + 0.5, x)))(x)
  np.testing.assert_allclose(out.per_example["perceptual"], distance, rtol=1e-4)
  assert float(jnp.min(out.per_example["perceptual"])) > 0
  np.testing.assert_allclose(out.per_example["loss"],
                             out.per_example["normalized_mse"] + out.per_example["perceptual"]
                             + out.per_example["codebook_loss"] * 1.25, rtol=1e-5)


def _classifier(channels=1):
  cfg = config_lib.get_config("classifier").model
  cfg.num_classes = 10
  return build_model(cfg, (28, 28, channels), seed=3)


def test_a_feature_network_is_its_classifiers_conv_layers_held_fixed():
  classifier = _classifier()
  x, y = _images(), _images(seed=1)
  expected = jax.jit(lambda x, y: feature_distance(classifier.feature_maps(x),
                                                   classifier.feature_maps(y)))(x, y)
  net = perceptual.load("features:DIR", SHAPE, lambda w: TrainedModel(classifier, SHAPE))
  assert not jax.tree.leaves(nnx.state(net, nnx.Param))
  np.testing.assert_allclose(jax.jit(net)(x, y), expected, rtol=1e-5)
  # Its conv layers work on another image size (the f = 8 runs' 32x32 images).
  assert jax.eval_shape(net, *[_images(shape=(32, 32, 1))] * 2).shape == (3,)


@pytest.mark.parametrize("trained,match", [
    (lambda: TrainedModel(nnx.eval_shape(lambda: _classifier(3)), (28, 28, 3)),
     "the feature network was trained on images of 3 channels, these have 1"),
    (lambda: TrainedModel(build_model(config_lib.get_config("vqvae").model, SHAPE,
                                      data_variance=0.1, seed=0, abstract=True), SHAPE),
     "DIR holds a VQVAE run, not a feature network: train one with `jaxvq features"),
])
def test_a_network_that_does_not_fit_is_refused_in_one_line(trained, match):
  model = trained()
  with pytest.raises(ConfigError, match=match) as e:
    perceptual.load("features:DIR", SHAPE, lambda w: model)
  assert "\n" not in str(e.value)


def test_a_missing_feature_network_is_refused_before_anything_is_written(tiny_config, tmp_path):
  config = _config(tiny_config, f"features:{tmp_path / 'nowhere'}")
  with pytest.raises(RunError, match="holds no run") as e:
    train_and_evaluate(config, str(tmp_path / "run"))
  assert "\n" not in str(e.value) and not os.path.exists(tmp_path / "run")


def test_any_feature_extractor_registered_by_name_is_a_perceptual_network(tiny_config):
  """A FunctionExtractor (jaxvq quality's interface) registered as "pixels": its one feature
  vector per image, unit-normalized."""
  flat = lambda images: images.reshape(images.shape[0], -1)
  perceptual.register("pixels", lambda shape: FunctionExtractor(flat, shape, 784))
  model = _model(_config(tiny_config, "pixels"))
  assert model.perceptual is None   # built by setup, through load_pretrained
  config_lib.check(_config(tiny_config, "pixels"))
  model.load_pretrained(None)
  x, y = _images(), _images(seed=1)
  np.testing.assert_allclose(model.perceptual(x, y), feature_distance([flat(x)], [flat(y)]),
                             rtol=1e-5)
  with pytest.raises(ValueError, match="jaxvq's own perceptual network name"):
    perceptual.register("random", lambda shape: None)


def test_lpips_without_lpips_nnx_is_refused_in_one_line(monkeypatch):
  monkeypatch.setitem(sys.modules, "lpips_nnx", None)   # as if not installed
  with pytest.raises(ConfigError, match=r"needs the lpips-nnx package: pip install "
                                        r"'jaxvq\[lpips\]'"):
    perceptual.load("lpips", SHAPE, None)


@pytest.mark.slow
def test_lpips_whose_vgg16_weights_cannot_be_fetched_is_refused_in_one_line(monkeypatch,
                                                                            tmp_path):
  lpips_weights = pytest.importorskip("lpips_nnx.weights")
  monkeypatch.setattr(lpips_weights, "CACHE_DIR", tmp_path)   # nothing cached

  def offline(*args, **kwargs):
    raise ConnectionError("no network")

  monkeypatch.setattr(lpips_weights.requests, "get", offline)
  with pytest.raises(ConfigError, match=r"could not load its VGG16 weights \(no network\); it "
                                        r"downloads them on first use") as e:
    perceptual.load("lpips", SHAPE, None)
  assert "\n" not in str(e.value)
  with pytest.raises(ConfigError, match="takes RGB or grayscale images"):
    perceptual.load("lpips", (28, 28, 2), None)


@pytest.mark.slow
def test_lpips_with_its_weights_in_place_is_the_perceptual_loss(tiny_config, monkeypatch):
  """VGG16's weights stood in for by random ones of their shapes (they cannot be downloaded
  here): the model's perceptual term is lpips-nnx's LPIPS of the images, grayscale repeated
  to RGB, its weights held fixed in the model state."""
  lpips_nnx = pytest.importorskip("lpips_nnx")
  rng = np.random.default_rng(0)
  widths = [(3, 64), (64, 64), (64, 128), (128, 128), (128, 256), (256, 256), (256, 256),
            (256, 512), (512, 512), (512, 512), (512, 512), (512, 512), (512, 512)]
  indices = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
  weights = {f"conv_{i}": {"kernel": (rng.normal(size=(3, 3, a, b)) * np.sqrt(2 / (9 * a))
                                      ).astype(np.float32),
                           "bias": np.zeros(b, np.float32)} for i, (a, b) in zip(indices, widths)}
  monkeypatch.setattr(lpips_nnx.vgg, "load_vgg16_weights", lambda: weights)
  model = _model(_config(tiny_config, "lpips"))
  model.load_pretrained(None)
  assert isinstance(model.perceptual.net.lpips, lpips_nnx.LPIPS)
  assert not jax.tree.leaves(nnx.state(model.perceptual, nnx.Param))
  x = _images(2)
  x_hat = jnp.clip(x + 0.1 * _images(2, seed=1), 0, 1)
  rgb = lambda v: jnp.repeat(v, 3, axis=-1)
  got, expected = jax.jit(lambda x, x_hat: (model.perceptual(x_hat, x),
                                            model.perceptual.net.lpips(rgb(x_hat), rgb(x),
                                                                       normalize=True)))(x, x_hat)
  np.testing.assert_allclose(got, expected.reshape(2), rtol=1e-5)
  assert float(jnp.min(got)) > 0


@pytest.mark.slow
def test_a_run_trains_against_the_classifier_jaxvq_features_trained(tiny_config, tmp_path):
  features = str(tmp_path / "features")
  train_feature_network("fashion_mnist", features, num_steps=4, batch_size=16, num_devices=1)
  config = _config(tiny_config, f"features:{features}")
  exp = setup(config, load_data(config))
  net = exp.model(exp.initial_state).perceptual.net
  extractor = load_feature_extractor(features)
  classifier = nnx.merge(extractor.graphdef, extractor.state)
  assert isinstance(net, Classifier) and not jax.tree.leaves(nnx.state(net, nnx.Param))
  for a, b in zip(jax.tree.leaves(nnx.state(net)), jax.tree.leaves(nnx.state(classifier))):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  # The run's FID may not be measured by it.
  config.quality_features = features
  with pytest.raises(ConfigError, match="is also config.quality_features"):
    train_and_evaluate(config, str(tmp_path / "run"))
