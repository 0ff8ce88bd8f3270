"""The autoregressive transformer prior (jaxvq/priors/transformer.py): causal, an exact
likelihood, its cached sampler drawing the codes of the uncached one and of the Python loop,
classifier-free guidance and label dropout, the 8-device step, and the whole pipeline."""
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxvq
from jaxvq import config as config_lib
from jaxvq import likelihood_bound
from jaxvq import sampling
from jaxvq.errors import ConfigError
from jaxvq.ops.decoding import guided_logits
from jaxvq.registry import build_model, default_config
from jaxvq.runtime import sharding, xla_options
from jaxvq.tokens.runs import encode_codes
from jaxvq.train import train_and_evaluate
from jaxvq.train.run import load_run

K = 7


def _prior(grid=(3, 4), num_classes=0, label_dropout=0.0, num_codes=K, seed=0):
  cfg = default_config("transformer")
  cfg.update(dim=16, depth=2, heads=2, num_codes=num_codes, class_conditional=bool(num_classes),
             num_classes=num_classes, image_dims=784, label_dropout=label_dropout)
  prior = build_model(cfg, grid, seed=seed)
  if num_classes:   # classes (and "no class") far apart, so that they change the draws
    prior.start.embedding[...] = jax.random.normal(jax.random.key(seed + 1),
                                                    prior.start.embedding.shape)
  return prior


def _experiment(prior):
  """What the samplers need of an experiment."""
  mesh = sharding.make_mesh(1)

  class Exp:
    initial_state = None
    model = staticmethod(lambda state: prior)
    jit_model = staticmethod(lambda fn: xla_options.jit(lambda state, *a: fn(prior, *a), mesh))
  return Exp


@pytest.mark.parametrize("num_classes", [0, 3])
def test_logits_never_see_the_code_at_or_after_their_position_but_see_the_one_before(
    num_classes):
  prior = _prior((4, 5), num_classes)
  logits = jax.jit(lambda codes, labels: prior.logits(codes, labels).reshape(2, 20, K))
  rng = np.random.default_rng(0)
  labels = jnp.array([1, 2]) if num_classes else None
  for j in list(rng.choice(20, size=8, replace=False)) + [0, 19]:
    codes = rng.integers(0, K, (2, 20))
    before = np.asarray(logits(codes.reshape(2, 4, 5), labels))
    changed = codes.copy()
    changed[:, j:] = (codes[:, j:] + rng.integers(1, K, (2, 20 - j))) % K   # every later code
    after = np.asarray(logits(changed.reshape(2, 4, 5), labels))
    np.testing.assert_array_equal(after[:, :j + 1], before[:, :j + 1], f"position <= {j}")
    if j + 1 < 20:
      assert np.abs(after[:, j + 1:] - before[:, j + 1:]).max() > 1e-4
    if j > 0:   # position j reads code j - 1
      changed = codes.copy()
      changed[:, j - 1] = (codes[:, j - 1] + 1) % K
      after = np.asarray(logits(changed.reshape(2, 4, 5), labels))
      np.testing.assert_array_equal(after[:, :j], before[:, :j])
      assert (np.abs(after[:, j] - before[:, j]).max(axis=-1) > 1e-4).all(), f"position {j}"
  if num_classes:   # the class reaches position 0
    codes = rng.integers(0, K, (2, 4, 5))
    difference = np.abs(logits(codes, jnp.array([0, 0])) - logits(codes, jnp.array([1, 3])))
    assert (np.asarray(difference)[:, 0].max(axis=-1) > 1e-4).all()


@pytest.mark.parametrize("num_classes", [0, 3])
def test_code_nll_is_the_log_softmax_picks_and_a_distribution_over_every_grid(num_classes):
  prior = _prior((2, 2), num_classes, num_codes=3)
  grids = jnp.array(list(itertools.product(range(3), repeat=4))).reshape(-1, 2, 2)   # all 81
  for label in ([0, 2, 3] if num_classes else [None]):   # 3: "no class"
    labels = None if label is None else jnp.full((81,), label)
    nll, logits = jax.jit(lambda labels: (prior.code_nll(grids, labels),
                                          prior.logits(grids, labels)))(labels)
    logits = np.asarray(logits, np.float64)
    log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    picks = np.take_along_axis(log_p, np.asarray(grids)[..., None], -1)[..., 0]
    np.testing.assert_allclose(nll, -picks.sum(axis=(1, 2)), rtol=1e-5)
    np.testing.assert_allclose(np.exp(-nll).sum(), 1.0, rtol=1e-5)


SAMPLING_CASES = [(0, {}), (0, {"top_k": 3, "top_p": 0.9}), (3, {}), (3, {"top_k": 4}),
                  (3, {"top_p": 0.7, "guidance": 2.5}), (3, {"top_k": 5, "guidance": 0.5})]


@pytest.mark.slow
@pytest.mark.parametrize("num_classes, options", SAMPLING_CASES)
def test_cached_sampler_draws_the_codes_of_the_uncached_one_and_of_the_python_loop(
    num_classes, options):
  prior = _prior((3, 4), num_classes, label_dropout=0.1 if num_classes else 0.0)
  labels = sampling.sample_labels(prior, 6)   # every class in turn
  hows = sampling.sampler_names(prior)
  assert hows == ("compiled_loop", "compiled_loop_without_cache", "python_loop")
  samplers = {how: sampling.make_sampler(_experiment(prior), 6, 0.8, how, **options)
              for how in hows[:2 if options else 3]}   # the Python loop takes no options
  cached = np.asarray(samplers["compiled_loop"](None, jax.random.key(7), labels))
  assert cached.shape == (6, 3, 4) and cached.dtype == np.int32 and 0 <= cached.min() < K
  for how, sampler in samplers.items():
    np.testing.assert_array_equal(cached, sampler(None, jax.random.key(7), labels), how)
  assert not np.array_equal(cached, samplers["compiled_loop"](None, jax.random.key(8), labels))


@pytest.mark.slow
@pytest.mark.parametrize("guidance", [1.0, 3.0, 0.0])
def test_greedy_draws_are_the_argmax_of_the_prior_s_guided_logits(guidance):
  prior = _prior((3, 4), 3, label_dropout=0.1)
  labels = jnp.array([0, 1, 2, 1])
  for method in (prior.sample, prior.sample_without_cache):
    codes = jax.jit(lambda key: method(key, 4, labels, top_k=1, guidance=guidance))(
        jax.random.key(0))
    logits = guided_logits(prior.logits(codes, labels),
                           prior.logits(codes, jnp.full_like(labels, prior.null_class)), guidance)
    np.testing.assert_array_equal(codes, np.argmax(np.asarray(logits), axis=-1))


@pytest.mark.slow
def test_guidance_0_draws_from_no_class_and_1_from_the_class():
  prior = _prior((3, 4), 3, label_dropout=0.1)
  labels, null = jnp.array([0, 1, 2, 0, 1]), jnp.full((5,), 3)
  draw = jax.jit(lambda labels, guidance: prior.sample(jax.random.key(2), 5, labels,
                                                       guidance=guidance), static_argnums=1)
  np.testing.assert_array_equal(draw(labels, 0.0), draw(null, 1.0))
  np.testing.assert_array_equal(draw(labels, 1.0),
                                jax.jit(lambda: prior.sample(jax.random.key(2), 5, labels))())
  assert not np.array_equal(draw(labels, 0.0), draw(labels, 1.0))


def test_label_dropout_trains_on_no_class_at_its_rate():
  rate, batch = 0.25, 4000
  prior = _prior((2, 2), 4, label_dropout=rate, num_codes=5)
  codes = jax.random.randint(jax.random.key(0), (batch, 2, 2), 0, 5)
  labels = jax.random.randint(jax.random.key(1), (batch,), 0, 4)
  own, null, loss, evaluation = jax.jit(lambda: (
      prior.code_nll(codes, labels), prior.code_nll(codes, jnp.full_like(labels, 4)),
      prior.loss_nats(codes, labels, jax.random.key(2), training=True),
      prior.loss_nats(codes, labels, jax.random.key(2), training=False)))()
  dropped = np.abs(loss - null) < np.abs(loss - own)
  np.testing.assert_allclose(loss, np.where(dropped, null, own), rtol=1e-5)
  assert abs(dropped.mean() - rate) < 4 * np.sqrt(rate * (1 - rate) / batch), dropped.mean()
  np.testing.assert_array_equal(evaluation, own)
  prior.label_dropout = 0.0   # as if trained without: the class always
  np.testing.assert_array_equal(jax.jit(lambda: prior.loss_nats(codes, labels, jax.random.key(2),
                                                                training=True))(), own)


def test_bad_configs_and_sampling_requests_are_one_line_errors():
  cfg = jaxvq.get_config("transformer")
  cfg.dataset = "codes:/nowhere"
  cfg.model.label_dropout = 1.0
  with pytest.raises(ConfigError, match=r"model\.label_dropout.*< 1"):
    config_lib.check(cfg)
  model = default_config("transformer")
  model.update(dim=30, heads=4, num_codes=K)
  with pytest.raises(ConfigError, match="^model.dim 30 must be divisible by model.heads 4"):
    build_model(model, (2, 2), seed=0)

  guided, plain = _prior((2, 2), 3, label_dropout=0.1), _prior((2, 2), 3)
  sampling.check_request(guided, 4, 1, top_k=K, top_p=0.5, guidance=3.0)   # all fine
  sampling.check_request(guided, 4, None, top_k=1, top_p=1e-3, guidance=0.0)
  for prior, options, message in [
      (guided, {"top_k": K + 1}, rf"^top_k must be in \[1, {K}\]"),
      (guided, {"top_k": -1}, r"^top_k must be in \[1, 7\]"),
      (guided, {"top_p": 0.0}, r"^top_p must be in \(0, 1\]"),
      (guided, {"top_p": 1.5}, r"^top_p must be in \(0, 1\]"),
      (guided, {"guidance": -0.5}, "^guidance must be at least 0"),
      (plain, {"guidance": 2.0}, "^guidance 2.0 needs a class-conditional prior trained with "
                                 "label dropout"),
      (guided, {"steps": 4}, r"^steps does not apply to the transformer prior \(its options: "
                             r"top_k, top_p, guidance\)")]:
    with pytest.raises(sampling.SampleError, match=message) as raised:
      sampling.check_request(prior, 4, None, **options)
    assert "\n" not in str(raised.value)


# --------------------------------------------------------------------- on a VQ-VAE's codes

@pytest.fixture(scope="module")
def vqvae_dir(tmp_path_factory):
  """A 2-step VQ-VAE on Fashion-MNIST (a likelihood of the pixels) and its codes."""
  from configs import tiny  # pylint: disable=g-import-not-at-top
  workdir = str(tmp_path_factory.mktemp("transformer") / "vqvae")
  config = tiny.get_config("vqvae")
  config.model.likelihood = "discretized_gaussian"
  config.update(num_train_steps=2, eval_every_steps=2, checkpoint_every_steps=2,
                log_every_steps=2, num_eval_examples=200)
  train_and_evaluate(config, workdir)
  encode_codes(workdir)
  return workdir


def _prior_config(vqvae_dir, **overrides):
  from configs import transformer_fashion_mnist  # pylint: disable=g-import-not-at-top
  config = transformer_fashion_mnist.get_config()
  config.model.update(dim=16, depth=2, heads=2)
  config.update({**dict(dataset=f"codes:{vqvae_dir}", batch_size=16, num_train_steps=3,
                        log_every_steps=1, eval_every_steps=3, checkpoint_every_steps=3,
                        num_eval_examples=100, eval_batch_size=100, num_devices=1),
                 **overrides})
  return config


@pytest.mark.slow
def test_the_train_step_on_8_devices_equals_1(vqvae_dir, assert_devices_agree):
  config = _prior_config(vqvae_dir)
  assert config.model.class_conditional and config.model.label_dropout == 0.1
  assert_devices_agree(config, 3)


@pytest.mark.slow
def test_trains_resumes_exactly_samples_with_options_and_bounds_the_nll(vqvae_dir, tmp_path):
  straight, resumed = str(tmp_path / "straight"), str(tmp_path / "resumed")
  config = _prior_config(vqvae_dir, learning_rate=3e-3, learning_rate_schedule="constant",
                         num_train_steps=8, checkpoint_every_steps=4, eval_every_steps=8)
  final = train_and_evaluate(config, straight)
  config.num_train_steps = 4
  train_and_evaluate(config, resumed)
  config.num_train_steps = 8
  assert train_and_evaluate(config, resumed) == final
  states = [load_run(d, step=8).state for d in (straight, resumed)]
  for a, b in zip(jax.tree.leaves(states[0]), jax.tree.leaves(states[1])):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  assert 0 < final["bits_per_code"] < np.log2(16)   # better than uniform over K

  pictures, codes, columns = jaxvq.sample_images(straight, 4, top_k=5, top_p=0.9, guidance=2.0,
                                                 seed=1)
  assert pictures.shape == (4, 28, 28, 1) and codes.shape == (4, 7, 7) and columns == 10
  again, codes_again, _ = jaxvq.sample_images(straight, 4, top_k=5, top_p=0.9, guidance=2.0,
                                              seed=1)
  np.testing.assert_array_equal(codes, codes_again)
  np.testing.assert_array_equal(pictures, again)
  with pytest.raises(sampling.SampleError, match="top_k must be in"):
    jaxvq.sample_images(straight, 4, top_k=17)

  bound = likelihood_bound.nll_bound(straight, num_examples=100, batch_size=100)
  np.testing.assert_allclose(bound["prior_bits_per_code"], final["bits_per_code"], rtol=1e-4)
