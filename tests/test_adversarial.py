"""VQGAN's losses (jaxvq/models/adversarial.py, jaxvq/ops/adversarial.py): the discriminator's
and generator's losses on known logits, the adaptive weight against a direct computation, the
gradients that one loss gives the generator and the discriminator, today's step when the
losses are off, the refusals, and (slow) resume and the 8-device step."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxvq import config as config_lib
from jaxvq.errors import ConfigError, RunError
from jaxvq.models.perceptual import Frozen
from jaxvq.nets import layers
from jaxvq.nets.discriminator import PatchDiscriminator
from jaxvq.ops import conv_kernels
from jaxvq.ops import adversarial as ops
from jaxvq.ops import vq
from jaxvq.registry import build_model
from jaxvq.train import load_run, train_and_evaluate
from jaxvq.train.metrics_writer import read_rows
from snapshots import snapshot

SHAPE = (28, 28, 1)


def gan(config, **model):
  """`config` (a tiny VQ-VAE's) with narrow VQGAN losses, every one of them on."""
  config.model.update(perceptual_weight=0.5, perceptual_widths=(4, 8), adversarial_weight=1.0,
                      disc_hidden=4, disc_layers=2, disc_start_step=0, lecam_weight=0.1,
                      r1_weight=1.0)
  config.model.update(model)
  return config


def _model(config):
  return build_model(config.model, SHAPE, data_variance=0.1, seed=0)


def _images(n=4, seed=0):
  return jax.random.uniform(jax.random.key(seed), (n,) + SHAPE)


# ----------------------------------------------------------------------------- the math

def test_discriminator_and_generator_losses_on_known_logits():
  real, fake = jnp.array([2.0, 0.5, -1.0]), jnp.array([-2.0, 0.0, 1.0])
  loss, (g_real, g_fake) = jax.value_and_grad(
      lambda r, f: ops.discriminator_loss("hinge", r, f), argnums=(0, 1))(real, fake)
  np.testing.assert_allclose(loss, 0.5 * ((0 + 0.5 + 2) / 3 + (0 + 1 + 2) / 3), rtol=1e-6)
  np.testing.assert_allclose(g_real, [0, -1 / 6, -1 / 6], rtol=1e-6)   # relu(1 - r): r < 1
  np.testing.assert_allclose(g_fake, [0, 1 / 6, 1 / 6], rtol=1e-6)     # relu(1 + f): f > -1
  softplus = lambda v: np.log1p(np.exp(v))
  sigmoid = lambda v: 1 / (1 + np.exp(-v))
  r, f = np.asarray(real, np.float64), np.asarray(fake, np.float64)
  loss, (g_real, g_fake) = jax.value_and_grad(
      lambda r, f: ops.discriminator_loss("non_saturating", r, f), argnums=(0, 1))(real, fake)
  np.testing.assert_allclose(loss, 0.5 * (softplus(-r).mean() + softplus(f).mean()), rtol=1e-6)
  np.testing.assert_allclose(g_real, -0.5 * sigmoid(-r) / 3, rtol=1e-5)
  np.testing.assert_allclose(g_fake, 0.5 * sigmoid(f) / 3, rtol=1e-5)
  g = jax.grad(lambda f: ops.generator_loss("hinge", f))(fake)
  np.testing.assert_allclose(g, [-1 / 3] * 3, rtol=1e-6)
  loss, g = jax.value_and_grad(lambda f: ops.generator_loss("non_saturating", f))(fake)
  np.testing.assert_allclose(loss, softplus(-f).mean(), rtol=1e-6)
  np.testing.assert_allclose(g, -sigmoid(-f) / 3, rtol=1e-5)


def test_lecam_and_r1_penalties_by_hand():
  real, fake = jnp.array([1.0, 3.0]), jnp.array([-1.0, 0.0])
  np.testing.assert_allclose(ops.lecam_penalty(real, fake, ema_real=2.0, ema_fake=-0.5),
                             ((1.5 ** 2 + 3.5 ** 2) / 2 + (3.0 ** 2 + 2.0 ** 2) / 2), rtol=1e-6)
  np.testing.assert_allclose(ops.ema(1.0, 2.0), 0.99 + 0.02, rtol=1e-6)
  # D(x) = sum(w x^2) per image: grad 2 w x, so R1 = mean_b sum (2 w x_b)^2.
  w = jnp.arange(6.0).reshape(1, 2, 3, 1)
  x = _images(2)[:, :2, :3]
  expected = np.mean(np.sum((2 * np.asarray(w) * np.asarray(x)) ** 2, axis=(1, 2, 3)))
  np.testing.assert_allclose(ops.r1_penalty(lambda v: w * v ** 2, x), expected, rtol=1e-5)


@pytest.mark.slow
def test_r1s_gradient_through_jaxvqs_conv_kernels_is_the_lax_convolutions(monkeypatch):
  """R1 differentiates the discriminator twice, through the hand-written backward pass of the
  4x4 stride-2 convolution on CPU (jaxvq/ops/conv_kernels.py): the same as XLA's."""
  create = lambda: PatchDiscriminator((16, 16, 1), 2, 2, rngs=nnx.Rngs(0))
  graphdef, params = nnx.split(nnx.eval_shape(create))[0], jax.jit(
      lambda: nnx.split(create())[1])()
  x = _images(2)[:, :16, :16]
  r1_grad = lambda: jax.jit(jax.grad(lambda p: ops.r1_penalty(nnx.merge(graphdef, p), x)))(
      params)
  fast = r1_grad()
  monkeypatch.setattr(layers, "conv2d", lambda v, k, stride=1, padding=((0, 0), (0, 0)):
                      conv_kernels.lax_conv2d(v, k, stride, padding))
  for a, b in zip(jax.tree.leaves(fast), jax.tree.leaves(r1_grad())):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
  assert any(np.any(g) for g in jax.tree.leaves(fast))


def _parts(model, x, key):
  """Functions of the parameters, computed the plain way (one jax.grad each): the
  reconstruction term L_rec, the quantizer's loss, and the discriminator's logits."""
  graphdef, params, rest = nnx.split(model, nnx.Param, ...)

  def forward(p):
    m = nnx.merge(graphdef, p, rest)
    q = m.quantizer(m.encoder(x), key, True)
    x_hat = m.decoder(q.quantized) + 0.5
    rec = jnp.mean(m.reconstruction_terms(x, x_hat)[0] + m.perceptual_weight *
                   m.perceptual(x_hat, x))
    return m, q, x_hat, rec

  return params, forward


def test_the_adaptive_weight_and_the_gradients_of_the_one_loss(tiny_config):
  """lambda = ||dL_rec/dW|| / (||dL_G/dW|| + 1e-4), W the decoder's last kernel, each gradient
  taken directly by jax.grad of its loss with respect to the parameters; and d loss / d D =
  d L_D / d D, d loss / d (encoder, decoder, codebook) = d (L_rec + q_loss + lambda L_G) / d
  (...), each computed on its own."""
  model = _model(gan(tiny_config, r1_weight=0.0))   # R1 has its own test, above
  x, key = _images(), jax.random.key(1)
  params, forward = _parts(model, x, key)
  graphdef, _, rest = nnx.split(model, nnx.Param, ...)
  out, grads = jax.jit(jax.grad(lambda p: (lambda o: (o.loss, o))(
      nnx.merge(graphdef, p, rest)(x, key, training=True)), has_aux=True))(params)[::-1]

  def generator_loss(p):
    m, _, x_hat, _ = forward(p)
    return -jnp.mean(m.adversarial.discriminator(x_hat))

  def by_hand(p):   # the parts, with the gradients the adaptive weight's norms are of
    m, q, x_hat, rec = forward(p)
    g_rec, g_gen = (jax.grad(f)(p)["decoder"]["up2"]["kernel"][...]
                    for f in (lambda p: forward(p)[3], generator_loss))
    return x_hat, jnp.linalg.norm(g_rec) / (jnp.linalg.norm(g_gen) + 1e-4)

  x_hat, weight = jax.jit(by_hand)(params)
  np.testing.assert_allclose(out.batch_metrics["adversarial_weight"], weight, rtol=1e-4)
  assert 0 < weight < 1e4
  m = nnx.merge(graphdef, params, rest)
  d_graphdef, d_params = nnx.split(m.adversarial.discriminator)

  def l_d(d_params):
    logits = nnx.merge(d_graphdef, d_params)(jnp.concatenate([x, x_hat]))
    real, fake = logits[:4], logits[4:]
    return (ops.discriminator_loss("hinge", real, fake)
            + 0.1 * ops.lecam_penalty(real, fake, 0.0, 0.0))

  def l_g(p):
    m, q, x_hat, rec = forward(p)   # (only the gradients of the other parts are compared)
    return rec + q.loss - weight * jnp.mean(m.adversarial.discriminator(x_hat))

  d_grads, g_grads = jax.jit(lambda d, p: (jax.grad(l_d)(d), jax.grad(l_g)(p)))(d_params, params)
  for a, b in zip(jax.tree.leaves(grads["adversarial"]), jax.tree.leaves(d_grads)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-7)
  assert any(np.any(g) for g in jax.tree.leaves(d_grads))
  for part in ("encoder", "decoder", "quantizer"):
    for a, b in zip(jax.tree.leaves(grads[part]), jax.tree.leaves(g_grads[part])):
      np.testing.assert_allclose(a, b, rtol=2e-4, atol=1e-7)


def test_before_its_start_step_the_discriminator_adds_nothing(tiny_config):
  """Until disc_start_step the loss is the reconstruction's and the quantizer's alone."""
  model = _model(gan(tiny_config, disc_start_step=5, r1_weight=0.0))
  out = jax.jit(lambda x: model(x, jax.random.key(1), training=True))(_images())
  assert float(out.batch_metrics["disc_active"]) == 0.0 and out.batch_metrics["d_loss"] > 0
  np.testing.assert_allclose(out.loss, jnp.mean(out.per_example["loss"]), rtol=1e-5)


def test_without_the_new_losses_the_model_is_todays(tiny_config):
  """All off (the defaults): no discriminator or perceptual network among the variables, and
  the loss and its gradient are exactly the seed's (reconstruction + the quantizer's loss,
  written out here)."""
  model = _model(tiny_config)
  graphdef, params, rest = nnx.split(model, nnx.Param, ...)
  assert set(params) == {"encoder", "decoder", "quantizer"}
  assert set(rest) <= {"quantizer"} and not jax.tree.leaves(nnx.state(model, Frozen))
  x, key = _images(), jax.random.key(1)

  def seed_loss(p):
    m = nnx.merge(graphdef, p, rest)
    q = vq.quantize(m.encoder(x), m.quantizer.codebook.vectors[...],
                    commitment_cost=tiny_config.model.quantizer.commitment_cost)
    mse = jnp.mean(((m.decoder(q.quantized) + 0.5) - x).reshape(4, -1) ** 2, axis=1)
    return jnp.mean(mse / m.data_variance) + q.loss

  model_loss = lambda p: nnx.merge(graphdef, p, rest)(x, key, training=True).loss
  a, b = jax.jit(jax.value_and_grad(model_loss))(params), jax.jit(
      jax.value_and_grad(seed_loss))(params)
  for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_array_equal(u, v)


def test_the_l1_reconstruction_term(tiny_config):
  tiny_config.model.likelihood = "l1"
  model = _model(tiny_config)
  x, key = _images(), jax.random.key(1)
  out, x_hat = jax.jit(lambda x: (model(x, key), model.decoder(
      model.quantizer(model.encoder(x), key, False).quantized) + 0.5))(x)
  l1 = np.mean(np.abs(np.asarray(x_hat) - np.asarray(x)).reshape(4, -1), axis=1)
  np.testing.assert_allclose(out.per_example["l1"], l1, rtol=1e-5)
  np.testing.assert_allclose(out.per_example["loss"], l1 + 1.25 * out.per_example[
      "codebook_loss"], rtol=1e-5)


# ----------------------------------------------------------------------------- refusals

def _check_fails(config, match):
  with pytest.raises(ConfigError, match=match) as e:
    config_lib.check(config)
  assert "\n" not in str(e.value)


@pytest.mark.parametrize("key,value,match", [
    ("adversarial_weight", -0.5, "adversarial_weight=-0.5: must be >= 0"),
    ("perceptual_weight", math.inf, "perceptual_weight=inf: must be a finite number"),
    ("lecam_weight", math.nan, "lecam_weight=nan: must be a finite number"),
    ("r1_weight", -1.0, "r1_weight=-1.0: must be >= 0"),
    ("disc_loss", "wasserstein", "disc_loss='wasserstein': must be one of 'hinge'"),
    ("likelihood", "l2", "likelihood='l2': must be one of"),
    ("perceptual_network", "vgg", "perceptual_network='vgg' names no network"),
    ("disc_start_step", 20, r"disc_start_step=20 is not before the run's end "
                            r"\(config.num_train_steps=20\)"),
])
def test_bad_settings_are_refused_in_one_line(tiny_config, key, value, match):
  config = gan(tiny_config)
  config_lib.check(config)
  config.model[key] = value
  _check_fails(config, match)


def test_a_discriminator_that_never_acts_is_refused_only_when_it_is_on(tiny_config):
  config = gan(tiny_config, disc_start_step=1000, adversarial_weight=0.0)
  config_lib.check(config)


def test_networks_deeper_than_the_images_are_refused(tiny_config):
  with pytest.raises(ConfigError, match="disc_layers=4 halves the 28x28 images 4 times"):
    _model(gan(tiny_config, disc_layers=4))
  with pytest.raises(ConfigError, match=r"perceptual_widths=\(1, 1, 1, 1, 1, 1\) pools the "
                                        r"28x28 images 5 times, to nothing"):
    _model(gan(tiny_config, perceptual_widths=(1,) * 6))


def test_the_fid_network_is_not_the_one_the_run_trained_against(tiny_config, tmp_path):
  config = gan(tiny_config, perceptual_network=f"features:{tmp_path}/features/")
  config.quality_features = str(tmp_path / "features")
  _check_fails(config, "is also config.quality_features: the run's FID would be measured by "
                       "the network it was trained against")
  config.quality_features = str(tmp_path / "other_features")
  config_lib.check(config)


@pytest.mark.parametrize("key,value", [("disc_hidden", 8), ("disc_start_step", 3),
                                       ("adversarial_weight", 0.5), ("disc_loss",
                                                                     "non_saturating"),
                                       ("lecam_weight", 0.0), ("perceptual_seed", 1),
                                       ("likelihood", "l1")])
def test_a_run_resumed_with_other_losses_is_another_run(tiny_config, key, value):
  config = gan(tiny_config)
  saved = config.to_dict()
  config.model[key] = value
  assert [d.split(":")[0] for d in config_lib.differences(saved, config)] == [f"model.{key}"]


# ----------------------------------------------------------------------------- whole runs

@pytest.mark.slow
def test_resume_in_the_middle_of_adversarial_training_equals_an_uninterrupted_run(
    tiny_config, tmp_path):
  """The discriminator's parameters and Adam moments, its step count and LeCam's averages are
  restored bit for bit; the run's random perceptual network is saved with it (the loss of a
  loaded run is the trained run's); a resume with other discriminator settings is refused."""
  config = gan(tiny_config, disc_start_step=2)
  config.update(num_train_steps=6, checkpoint_every_steps=3, eval_every_steps=6,
                log_every_steps=3, num_eval_examples=32, eval_batch_size=32)
  straight, resumed = str(tmp_path / "straight"), str(tmp_path / "resumed")
  train_and_evaluate(config, straight)
  config.num_train_steps = 3
  train_and_evaluate(config, resumed)
  config.num_train_steps = 6
  train_and_evaluate(config, resumed)
  runs = [load_run(d) for d in (straight, resumed)]
  for a, b in zip(jax.tree.leaves(runs[0].state), jax.tree.leaves(runs[1].state)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  assert read_rows(straight, "test")[-1] == read_rows(resumed, "test")[-1]
  train = read_rows(straight, "train")
  assert [r["disc_active"] for r in train] == [pytest.approx(1 / 3), 1.0]
  assert {"d_loss", "g_loss", "logits_real", "logits_fake", "perceptual", "lecam_penalty",
          "r1_penalty", "adversarial_weight"} <= set(train[-1])
  model = runs[0].model
  assert int(model.adversarial.steps[...]) == 6
  assert float(model.adversarial.lecam_real[...]) != 0.0
  # The random perceptual network is the seeded one, saved in the checkpoint, never trained.
  fresh = _model(config)
  for a, b in zip(jax.tree.leaves(nnx.state(model.perceptual)),
                  jax.tree.leaves(nnx.state(fresh.perceptual))):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  x = _images()
  np.testing.assert_array_equal(*[r.jit(lambda m, x: m.perceptual(x, 0.5 * x))(x) for r in runs])

  config.model.disc_hidden = 8
  before = snapshot(resumed)
  with pytest.raises(RunError, match=r"holds a run of a different config \(model.disc_hidden: "
                                     r"4 -> 8\)"):
    train_and_evaluate(config, resumed)
  assert snapshot(resumed) == before


@pytest.mark.slow
def test_eight_device_adversarial_step_equals_one_device_step(tiny_config, assert_devices_agree):
  config = gan(tiny_config, disc_start_step=1, r1_weight=0.0)   # R1: in the resume test
  config.model.quantizer.codebook_update = "ema"
  assert_devices_agree(config, num_steps=3, atol=1e-5)
