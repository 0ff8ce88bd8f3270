"""The MaskGIT prior (jaxvq/priors/maskgit.py): its loss is the masked codes' cross-entropy by
hand, guidance 0 and 1 are the null class's and the class's logits, sampling options it cannot
use are refused in one line, its 8-device train step equals 1 device's, and end to end it
trains, resumes exactly, samples images and is refused a likelihood bound."""
import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxvq
from jaxvq import sampling
from jaxvq.errors import BoundError, ConfigError, SampleError
from jaxvq.likelihood_bound import nll_bound, prior_bits
from jaxvq.ops import decoding
from jaxvq.registry import build_model
from jaxvq.tokens import codes as codes_lib
from jaxvq.tokens.runs import encode_codes

K, CLASSES, GRID = 16, 10, (7, 7)


def _model_config(**changes):
  cfg = jaxvq.get_config("maskgit").model
  cfg.update(dim=32, depth=2, heads=4, decoding_steps=4, class_conditional=True,
             num_codes=K, num_classes=CLASSES, image_dims=784)
  cfg.update(**changes)
  return cfg


def _prior(seed=0, **changes):
  return build_model(_model_config(**changes), GRID, seed=seed)


def _random_codes(batch, seed=0):
  rng = np.random.default_rng(seed)
  return (jnp.asarray(rng.integers(0, K, (batch,) + GRID), jnp.int32),
          jnp.asarray(rng.integers(0, CLASSES, batch), jnp.int32))


@pytest.fixture(scope="module")
def tiny_codes(tmp_path_factory):
  """A 2-step tiny VQ-VAE on 256 + 64 Fashion-MNIST images, and its codes with their labels."""
  from configs import tiny  # pylint: disable=g-import-not-at-top
  from jaxvq.data import datasets  # pylint: disable=g-import-not-at-top
  root = tmp_path_factory.mktemp("maskgit")
  fashion = datasets.load("fashion_mnist")
  np.savez(root / "small.npz", x_train=fashion.train.array[:256], x_test=fashion.test.array[:64])
  vq_dir = str(root / "vq")
  config = tiny.get_config("vqvae")
  config.update(dataset=f"npz:{root}/small.npz", num_train_steps=2, eval_every_steps=2,
                checkpoint_every_steps=2, log_every_steps=2, num_eval_examples=0)
  jaxvq.train_and_evaluate(config, vq_dir)
  metadata = encode_codes(vq_dir)
  # An npz has no labels: the codes are written again with the images' Fashion-MNIST classes.
  splits = {}
  for split, source in (("train", fashion.train), ("test", fashion.test)):
    with np.load(f"{vq_dir}/codes/{split}.npz") as f:
      grids = f["codes"]
    splits[split] = (grids, source.labels(np.arange(len(grids))))
  codes_lib.write(vq_dir, splits, {**metadata, "num_classes": CLASSES})
  return vq_dir


def _train_config(vq_dir, steps=2):
  config = jaxvq.get_config("maskgit")
  config.update(dataset=f"codes:{vq_dir}", batch_size=16, num_train_steps=steps,
                learning_rate=1e-3, log_every_steps=steps, eval_every_steps=steps,
                checkpoint_every_steps=steps, num_eval_examples=32, eval_batch_size=32,
                num_devices=1)
  config.model.update(dim=32, depth=2, heads=4, decoding_steps=4, class_conditional=True,
                      label_dropout=0.1)
  return config


@pytest.mark.parametrize("training", [False, True])
def test_the_loss_is_the_masked_codes_cross_entropy_by_hand(training):
  prior = _prior(label_dropout=0.5)
  codes, labels = _random_codes(6)
  key = jax.random.key(4)
  out = prior(codes, key, labels, training=training)
  # By hand: the masks the cosine schedule draws from the key's first half; in training, the
  # labels the key's second half drops to "no class" (label 10) at rate 0.5.
  mask_key, label_key = jax.random.split(key)
  masks = np.asarray(decoding.masks_for_training(mask_key, 6, 49))
  if training:
    dropped = np.asarray(jax.random.bernoulli(label_key, 0.5, (6,)))
    assert 0 < dropped.sum() < 6
    labels = jnp.where(dropped, CLASSES, labels)
  flat = np.asarray(codes).reshape(6, 49)
  logits = np.asarray(prior.masked_logits(jnp.asarray(np.where(masks, K, flat)), labels),
                      np.float64)
  log_p = logits - logits.max(-1, keepdims=True)
  log_p -= np.log(np.exp(log_p).sum(-1, keepdims=True))
  nats = np.array([-sum(log_p[b, i, flat[b, i]] for i in range(49) if masks[b, i])
                   for b in range(6)])
  per_code = nats / masks.sum(-1)
  np.testing.assert_allclose(out.per_example["loss"], per_code, rtol=1e-5)
  np.testing.assert_allclose(out.per_example["masked_bits_per_code"], per_code / math.log(2),
                             rtol=1e-5)
  np.testing.assert_allclose(out.loss, nats.sum() / masks.sum(), rtol=1e-5)
  assert set(out.per_example) == {"loss", "masked_bits_per_code"}   # no bits per code


def test_every_position_sees_every_other_and_the_class():
  prior = _prior()
  tokens = jnp.full((1, 49), K, jnp.int32)
  base = prior.masked_logits(tokens, jnp.array([3]))
  assert not np.allclose(base[0, 0], prior.masked_logits(tokens.at[0, 48].set(5),
                                                          jnp.array([3]))[0, 0])
  assert not np.allclose(base[0, 48], prior.masked_logits(tokens.at[0, 0].set(5),
                                                           jnp.array([3]))[0, 48])
  assert not np.allclose(base, prior.masked_logits(tokens, jnp.array([4])))
  with pytest.raises(NotImplementedError, match="no exact likelihood"):
    prior.code_nll(*_random_codes(2))


@pytest.mark.parametrize("order", [None, (2, 0, 3, 1)])
def test_the_one_code_per_step_likelihood_sums_to_1_and_is_the_chain_rule(order):
  """Over all 3^4 grids of a 2x2 grid of K = 3 codes, exp(-ordered_nll) sums to 1 (each factor
  conditions on the codes decoded before it, never on its own), and the first grid's nats are
  the chain rule's factors by hand."""
  prior = build_model(_model_config(num_codes=3, decoding_steps=2), (2, 2), seed=3)
  grids = jnp.asarray(np.stack(np.meshgrid(*[np.arange(3)] * 4, indexing="ij"), -1)
                      .reshape(-1, 2, 2), jnp.int32)                     # [81, 2, 2]
  labels = jnp.full((81,), 4, jnp.int32)
  nats = prior.ordered_nll(grids, labels, order)
  np.testing.assert_allclose(jnp.sum(jnp.exp(-nats)), 1.0, rtol=1e-5)
  steps = order or (0, 1, 2, 3)
  flat, by_hand = np.asarray(grids[40]).reshape(-1), 0.0
  for i, position in enumerate(steps):
    tokens = np.full(4, 3)
    tokens[list(steps[:i])] = flat[list(steps[:i])]
    logits = prior.masked_logits(jnp.asarray(tokens)[None], labels[:1])[0, position]
    by_hand -= jax.nn.log_softmax(logits)[flat[position]]
  np.testing.assert_allclose(nats[40], by_hand, rtol=1e-5)


@pytest.mark.slow
def test_guidance_0_is_the_null_class_and_1_the_class():
  prior = _prior(label_dropout=0.1)
  codes, labels = _random_codes(4, seed=1)
  tokens = jnp.where(decoding.masks_for_training(jax.random.key(0), 4, 49), K,
                     codes.reshape(4, 49))
  conditional = prior.masked_logits(tokens, labels)
  null = prior.masked_logits(tokens, jnp.full_like(labels, CLASSES))
  np.testing.assert_allclose(prior.sampling_logits(tokens, labels, 0.0), null, atol=1e-5)
  np.testing.assert_allclose(prior.sampling_logits(tokens, labels, 1.0), conditional)
  np.testing.assert_allclose(prior.sampling_logits(tokens, labels, 2.5),
                             null + 2.5 * (conditional - null), atol=1e-4)
  # Sampled through the decoder: guidance 0 draws what the null class draws.
  draw = jax.jit(lambda key, labels, guidance: prior.sample(key, 4, labels, guidance=guidance),
                 static_argnums=2)
  np.testing.assert_array_equal(draw(jax.random.key(5), labels, 0.0),
                                draw(jax.random.key(5), jnp.full_like(labels, CLASSES), 1.0))


def test_sampling_draws_codes_with_no_mask_left_and_the_key_decides():
  prior = _prior()
  draw = jax.jit(lambda key, steps: prior.sample(key, 3, jnp.array([0, 1, 2]), steps=steps,
                                                 top_k=8, top_p=0.9), static_argnums=1)
  a = np.asarray(draw(jax.random.key(1), 0))
  assert a.shape == (3,) + GRID and a.min() >= 0 and a.max() < K
  np.testing.assert_array_equal(a, draw(jax.random.key(1), 4))   # 0: decoding_steps (4)
  assert not np.array_equal(a, draw(jax.random.key(2), 4))
  every = np.asarray(draw(jax.random.key(1), 49))                 # one code per step
  assert every.min() >= 0 and every.max() < K


def test_the_choice_temperature_option_reaches_the_decoder_and_unset_is_the_configs():
  prior = _prior(choice_temperature=30.0)
  labels = jnp.array([0, 1, 2, 3])

  def draw(choice_temperature):
    return jax.jit(lambda key: prior.sample(key, 4, labels, choice_temperature=choice_temperature)
                   )(jax.random.key(7))

  def decoded(choice_temperature):
    codes, _ = decoding.parallel_decode(
        jax.random.key(7), lambda tokens: prior.sampling_logits(tokens, labels), 4, 49, K,
        prior.decoding_steps, 1.0, choice_temperature)
    return codes.reshape((4,) + GRID)

  np.testing.assert_array_equal(draw(None), decoded(30.0))   # unset: the config's
  np.testing.assert_array_equal(draw(4.5), decoded(4.5))
  np.testing.assert_array_equal(draw(0.0), decoded(0.0))
  assert not np.array_equal(decoded(0.0), decoded(30.0))
  assert not np.array_equal(decoded(4.5), decoded(30.0))


@pytest.mark.parametrize("options, message", [
    ({"steps": -1}, "steps must be in [1, 49] (the grid's positions); got -1"),
    ({"steps": 50}, "steps must be in [1, 49] (the grid's positions); got 50"),
    ({"top_k": 17}, "top_k must be in [1, 16] (the codes), or 0 for all; got 17"),
    ({"top_k": -2}, "top_k must be in [1, 16] (the codes), or 0 for all; got -2"),
    ({"top_p": 0.0}, "top_p must be in (0, 1]; got 0.0"),
    ({"top_p": 1.5}, "top_p must be in (0, 1]; got 1.5"),
    ({"guidance": -0.5}, "guidance must be at least 0 (1: no guidance); got -0.5"),
    ({"choice_temperature": -1.0}, "choice_temperature must be a finite number of at least 0"),
    ({"choice_temperature": float("inf")}, "choice_temperature must be a finite number of at "
     "least 0 (0: keep the most confident codes; the paper's 4.5); got inf"),
    ({"guidance": 2.0, "dropout": 0.0}, "guidance 2.0 needs a class-conditional prior trained "
     "with label dropout"),
])
def test_options_it_cannot_use_are_refused_in_one_line(options, message):
  prior = _prior(label_dropout=options.pop("dropout", 0.1))
  with pytest.raises(SampleError, match=re.escape(message)) as error:
    sampling.check_request(prior, 4, None, 1.0, **options)
  assert "\n" not in str(error.value)


def test_options_it_can_use_pass_and_bad_configs_are_refused():
  prior = _prior(label_dropout=0.1)
  sampling.check_request(prior, 4, 3, 0.5, steps=49, top_k=16, top_p=0.5, guidance=0.0)
  sampling.check_request(prior, 4, None, 1.0, steps=1, top_k=1, top_p=1.0, guidance=3.0)
  sampling.check_request(prior, 4, None, 1.0, choice_temperature=0.0)
  sampling.check_request(prior, 4, None, 1.0, choice_temperature=50.0)
  with pytest.raises(ConfigError, match="decoding_steps 50 is more than the 49 positions"):
    _prior(decoding_steps=50)
  with pytest.raises(ConfigError, match="label_dropout 0.1 drops class labels"):
    _prior(class_conditional=False, num_classes=0, label_dropout=0.1)
  with pytest.raises(ConfigError, match="model.dim 30 must be divisible by model.heads 4"):
    _prior(dim=30)
  with pytest.raises(ConfigError, match="the maskgit prior computes in float32 only; got "
                     "dtype=bfloat16"):
    build_model(_model_config(), GRID, seed=0, dtype=jnp.bfloat16)


@pytest.mark.slow
def test_the_8_device_train_step_equals_1_device(tiny_codes, assert_devices_agree):
  assert_devices_agree(_train_config(tiny_codes), num_steps=2)


@pytest.mark.slow
def test_trains_resumes_exactly_samples_images_and_has_no_likelihood_bound(tiny_codes,
                                                                           tmp_path):
  straight, resumed = str(tmp_path / "straight"), str(tmp_path / "resumed")
  expected = jaxvq.train_and_evaluate(_train_config(tiny_codes, 4), straight)
  assert np.isfinite(expected["masked_bits_per_code"]) and "bits_per_code" not in expected
  jaxvq.train_and_evaluate(_train_config(tiny_codes, 2), resumed)
  assert jaxvq.train_and_evaluate(_train_config(tiny_codes, 4), resumed) == expected
  a, b = jaxvq.load_run(straight), jaxvq.load_run(resumed)
  assert b.step == 4
  jax.tree.map(np.testing.assert_array_equal, (a.state.params, a.state.opt_state),
               (b.state.params, b.state.opt_state))

  pictures, codes, columns = jaxvq.sample_images(resumed, 6, steps=4, guidance=2.0, seed=1)
  assert pictures.shape == (6, 28, 28, 1) and codes.shape == (6,) + GRID and columns == CLASSES
  assert 0 <= codes.min() and codes.max() < K and 0 <= pictures.min() <= pictures.max() <= 1
  again, _, _ = jaxvq.sample_images(resumed, 6, steps=4, guidance=2.0, seed=1)
  np.testing.assert_array_equal(pictures, again)

  with pytest.raises(BoundError, match="maskgit prior .* gives no exact likelihood") as error:
    nll_bound(resumed)
  assert "\n" not in str(error.value)
  # `jaxvq bits --codes_only`: the raster one-code-per-step likelihood of the test codes, in
  # batches (the last one padded) as the model's own on the whole split.
  bits = prior_bits(resumed, num_examples=40, batch_size=16)
  assert bits["examples"] == 40 and bits["likelihood"] == "raster_one_code_per_step"
  test = b.experiment.dataset.test
  nats = b.model.ordered_nll(jnp.asarray(test.inputs(np.arange(40)), jnp.int32),
                             jnp.asarray(test.labels(np.arange(40))))
  np.testing.assert_allclose(bits["prior_bits_per_code"],
                             float(jnp.mean(nats)) / (49 * math.log(2)), rtol=1e-5)
