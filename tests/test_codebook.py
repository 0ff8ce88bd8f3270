import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxvq.registry import build_model
from jaxvq.ops import codebook
from jaxvq.train import evaluate, steps


@pytest.fixture
def batch():
  rng = np.random.default_rng(0)
  return rng.normal(size=(200, 4)).astype(np.float32), rng.integers(0, 8, size=200)


def test_ema_update_equals_numpy_reference(batch):
  flat, indices = batch
  rng = np.random.default_rng(1)
  n0, m0 = rng.random(8).astype(np.float32) + 0.5, rng.normal(size=(8, 4)).astype(np.float32)
  n, m = codebook.ema_update(jnp.asarray(n0), jnp.asarray(m0), flat, jnp.asarray(indices), decay=0.9)
  counts = np.array([(indices == k).sum() for k in range(8)])
  sums = np.stack([flat[indices == k].sum(0) for k in range(8)])
  np.testing.assert_allclose(n, 0.9 * n0 + 0.1 * counts, rtol=1e-6)
  np.testing.assert_allclose(m, 0.9 * m0 + 0.1 * sums, rtol=1e-5, atol=1e-6)
  eps = 1e-3
  smoothed = (n0 + eps) / (n0.sum() + 8 * eps) * n0.sum()
  np.testing.assert_allclose(codebook.ema_codebook(n0, m0, eps), m0 / smoothed[:, None], rtol=1e-5)


def test_ema_with_no_decay_sets_each_used_code_to_the_mean_of_its_inputs(batch):
  flat, indices = batch
  indices = np.where(indices == 3, 4, indices)  # code 3 unused
  n, m = codebook.ema_update(jnp.ones(8), jnp.zeros((8, 4)), flat, jnp.asarray(indices), decay=0.0)
  codes = np.asarray(codebook.ema_codebook(n, m, epsilon=0.0))
  for k in set(indices.tolist()):
    np.testing.assert_allclose(codes[k], flat[indices == k].mean(0), rtol=1e-5, atol=1e-6)
  assert np.all(np.isfinite(codes))


def test_ema_state_reproduces_its_codebook():
  c = jax.random.normal(jax.random.key(0), (16, 3))
  n, m = codebook.ema_state_for(c, jnp.arange(16.0))
  np.testing.assert_allclose(codebook.ema_codebook(n, m, 1e-5), c, rtol=1e-3, atol=1e-5)


def test_kmeans_reduces_quantization_error_versus_random_init():
  key = jax.random.key(0)
  centers = jax.random.normal(key, (32, 8)) * 3
  points = centers[jax.random.randint(jax.random.key(1), (2000,), 0, 32)] + 0.1 * jax.random.normal(
      jax.random.key(2), (2000, 8))
  random_init = jax.random.uniform(jax.random.key(3), (32, 8), minval=-1, maxval=1)
  fitted, counts = jax.jit(codebook.kmeans, static_argnums=(2, 3))(jax.random.key(4), points, 32, 10)
  assert float(codebook.quantization_error(points, fitted)) < 0.1 * float(
      codebook.quantization_error(points, random_init))
  assert float(jnp.sum(counts)) == 2000


def test_dead_code_is_restarted_with_an_input_vector(batch):
  flat, _ = batch
  usage = jnp.array([5.0, 0.0, 3.0, 0.001, 2.0, 2.0, 2.0, 2.0])
  dead, replacements = codebook.dead_code_candidates(jax.random.key(0), usage, jnp.asarray(flat), 0.5)
  np.testing.assert_array_equal(dead, [False, True, False, True] + [False] * 4)
  for r in np.asarray(replacements):
    assert np.any(np.all(np.isclose(flat, r), axis=1))


def _vqvae_config(tiny_config, update):
  tiny_config.model.quantizer.update(codebook_update=update, restart_every_steps=1,
                                     dead_code_threshold=0.5)
  return tiny_config


@pytest.mark.parametrize("update", ["gradient", "ema"])
def test_vqvae_training_step_restarts_a_deliberately_dead_code(tiny_config, update):
  model = build_model(_vqvae_config(tiny_config, update).model, (28, 28, 1), data_variance=0.1, seed=0)
  x = jax.random.uniform(jax.random.key(0), (8, 28, 28, 1))
  out = model(x, None)
  dead = int(np.setdiff1d(np.arange(16), np.asarray(out.internals.indices))[0])
  book = model.quantizer.codebook
  book.usage[...] = jnp.full((16,), 100.0).at[dead].set(0.0)
  book.vectors[...] = book.vectors[...].at[dead].set(1e6)   # far from every input
  metrics = model.update_after_step(out, jax.random.key(1), jnp.int32(0))
  assert int(metrics["num_codes_restarted"]) == 1
  latents = np.asarray(out.internals.latents).reshape(-1, 8)
  assert np.any(np.all(np.isclose(latents, np.asarray(book.vectors[...])[dead], atol=1e-5), axis=1))
  assert dead in np.asarray(model.encode_to_indices(x))
  if update == "ema":  # the restarted code counts as one assignment of its new vector
    assert float(book.cluster_size[...][dead]) == 1.0
    np.testing.assert_allclose(book.embed_sum[...][dead], book.vectors[...][dead], rtol=1e-6)


@pytest.mark.slow
def test_ema_codebook_takes_no_gradient_and_evaluation_leaves_its_state_untouched(tiny_config,
                                                                                  experiment):
  config = _vqvae_config(tiny_config, "ema")
  config.model.quantizer.restart_every_steps = 0
  exp = experiment(config)
  assert "quantizer" not in exp.initial_state.params   # the EMA codebook is no parameter
  assert "vectors" in exp.initial_state.model_state["quantizer"]["codebook"]
  before = jax.device_get(exp.initial_state.model_state)
  # Evaluation runs the model's forward pass on a merged module: it must not write its state.
  model = exp.model(exp.initial_state)
  model(jax.random.uniform(jax.random.key(0), (8, 28, 28, 1)), None)
  evaluate.evaluate(exp, exp.initial_state, steps.make_eval_step(exp))
  for a, b in zip(jax.tree.leaves(before), jax.tree.leaves(jax.device_get(nnx.state(model, nnx.Not(nnx.Param))))):
    np.testing.assert_array_equal(a, b)
  # A training step moves the EMA statistics and the codebook (no restarts here).
  state, metrics = steps.make_train_step(exp)(exp.initial_state, steps.train_batch(exp, 0))
  after = jax.device_get(state.model_state)
  assert "num_codes_restarted" not in metrics
  for name in ("vectors", "cluster_size", "embed_sum"):
    assert not np.allclose(before["quantizer"]["codebook"][name][...],
                           after["quantizer"]["codebook"][name][...]), name


def test_kmeans_initialisation_leaves_ema_state_consistent_with_the_codebook(tiny_config,
                                                                             experiment):
  config = _vqvae_config(tiny_config, "ema")
  config.model.quantizer.kmeans_init_batches = 2
  exp = experiment(config)
  state = steps.initialize_from_data(exp, exp.initial_state)
  ms = jax.device_get(state.model_state)["quantizer"]["codebook"]
  initial = jax.device_get(exp.initial_state.model_state)["quantizer"]["codebook"]
  assert not np.allclose(ms["vectors"][...], initial["vectors"][...])
  np.testing.assert_allclose(codebook.ema_codebook(ms["cluster_size"][...], ms["embed_sum"][...], 1e-5),
                             ms["vectors"][...], rtol=1e-3, atol=1e-4)
  np.testing.assert_allclose(np.sum(np.maximum(ms["cluster_size"][...], 1)), 16 * 49, rtol=0.5)


@pytest.mark.parametrize("option", ["cosine_codebook", "codebook_dim"])
def test_cosine_and_low_dimensional_codebooks(tiny_config, option):
  setattr(tiny_config.model.quantizer, option, True if option == "cosine_codebook" else 3)
  model = build_model(tiny_config.model, (28, 28, 1), data_variance=0.1, seed=0)
  x = jax.random.uniform(jax.random.key(0), (2, 28, 28, 1))
  out = model(x, None)
  latents = np.asarray(out.internals.latents)
  if option == "cosine_codebook":
    np.testing.assert_allclose(np.linalg.norm(latents, axis=-1), 1.0, rtol=1e-5)
  else:
    assert latents.shape == (2, 7, 7, 3) and model.quantizer.codebook.vectors[...].shape == (16, 3)
  np.testing.assert_allclose(model.decode_from_indices(out.internals.indices), out.reconstruction, atol=1e-5)
