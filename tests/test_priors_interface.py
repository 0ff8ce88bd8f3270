"""A prior defined here, and nowhere in jaxvq, trains, samples and is measured through the
public API: a new prior is one class (in jaxvq/priors/, one file) and its config."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import jaxvq
from jaxvq.priors.base import PRIOR_FIELDS, Prior
from jaxvq.schema import Field


class PositionMarginals(Prior):
  """Independent codes: p(c) = prod_ij softmax(w_ij)[c_ij], one learned K-vector per position
  (the `marginal:` ablation of jaxvq quality, as a trained prior)."""

  CONFIG = {"name": Field("test_position_marginals", "the model",
                          choices=("test_position_marginals",)), **PRIOR_FIELDS}

  def __init__(self, cfg, grid_shape, *, dtype=jnp.float32, rngs: nnx.Rngs):
    del dtype, rngs
    super().__init__(cfg, grid_shape)
    self.weights = nnx.Param(jnp.zeros(self.grid_shape + (self.num_codes,)))

  def code_nll(self, codes, labels=None):
    del labels
    log_p = jax.nn.log_softmax(self.weights[...])                      # [h, w, K]
    picked = jnp.take_along_axis(log_p[None], codes[..., None], axis=-1)[..., 0]
    return -jnp.sum(picked, axis=(1, 2))

  def sample(self, key, num, labels=None, temperature=1.0):
    del labels
    logits = jnp.broadcast_to(self.weights[...] / temperature, (num,) + self.weights.shape)
    return jax.random.categorical(key, logits).astype(jnp.int32)


@pytest.fixture(scope="module")
def trained_prior(trained_vqvae, tmp_path_factory):
  """The session's tiny VQ-VAE on Fashion-MNIST and its codes (tests/conftest.py), and the
  test's prior trained on them."""
  root = tmp_path_factory.mktemp("interface")
  config = jaxvq.get_config("test_position_marginals")
  config.update(dataset=f"codes:{trained_vqvae.workdir}", batch_size=64, num_train_steps=30,
                learning_rate=0.05, log_every_steps=10, eval_every_steps=30,
                checkpoint_every_steps=30, num_eval_examples=500, num_devices=1)
  final = jaxvq.train_and_evaluate(config, str(root / "prior"))
  return root, final


@pytest.mark.slow
def test_a_prior_defined_in_a_test_trains_through_the_loop(trained_prior):
  root, final = trained_prior
  assert 0 < final["bits_per_code"] < np.log2(16)   # it learned the codes' marginals
  run = jaxvq.load_prior(str(root / "prior"))
  assert isinstance(run.model, PositionMarginals) and run.model.grid_shape == (7, 7)
  assert run.config.model.num_codes == 16 and set(run.config.model) == set(
      PositionMarginals.CONFIG)
  # Its loss is what the interface says: the codes' NLL per position, here by hand.
  codes = run.experiment.dataset.test.inputs(np.arange(500)).astype(np.int32)
  log_p = jax.nn.log_softmax(run.model.weights[...])
  by_hand = -np.mean([log_p[i, j, codes[:, i, j]] for i in range(7) for j in range(7)])
  np.testing.assert_allclose(final["bits_per_code"], by_hand / np.log(2), rtol=1e-4)


@pytest.mark.slow
def test_a_prior_defined_in_a_test_samples_and_is_measured_through_the_public_api(
    trained_prior):
  root, _ = trained_prior
  pictures, codes, columns = jaxvq.sample_images(str(root / "prior"), num_samples=6, seed=3)
  assert pictures.shape == (6, 28, 28, 1) and codes.shape == (6, 7, 7) and columns == 0
  assert 0 <= codes.min() and codes.max() < 16 and 0 <= pictures.min() <= pictures.max() <= 1
  again, _, _ = jaxvq.sample_images(str(root / "prior"), num_samples=6, seed=3)
  np.testing.assert_array_equal(pictures, again)
  pooled = lambda images: jnp.mean(images.reshape(-1, 4, 7, 4, 7), axis=(2, 4)).reshape(-1, 16)
  extractor = jaxvq.FunctionExtractor(pooled, (28, 28, 1), feature_dim=16)
  (row,) = jaxvq.measure_sources([f"prior:{root / 'prior'}"], extractor, num=64,
                                 dataset="fashion_mnist")
  assert row["num_images"] == 64 and np.isfinite(row["fid"]) and row["fid"] > 0
