"""The modern quantizers' math on hand-computed cases: FSQ, LFQ and its entropy loss, residual
VQ, the rotation trick, the entropy loss of plain VQ; and each quantizer in the VQ-VAE."""
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvq import config as config_lib
from jaxvq.errors import ConfigError
from jaxvq.registry import build_model
from jaxvq.ops import entropy, fsq, lfq, residual_vq, vq


def _numpy_entropy_loss(logits, temperature, gamma):
  z = logits / temperature
  p = np.exp(z - z.max(-1, keepdims=True))
  p /= p.sum(-1, keepdims=True)
  h = lambda q: -np.sum(np.where(q > 0, q * np.log(np.where(q > 0, q, 1)), 0), -1)
  return h(p).mean() - gamma * h(p.mean(0))


def test_entropy_loss_equals_a_numpy_computation():
  logits = np.random.default_rng(0).normal(size=(50, 12)) * 3
  for temperature, gamma in ((1.0, 1.0), (0.3, 0.5)):
    np.testing.assert_allclose(entropy.entropy_loss(jnp.asarray(logits), temperature, gamma),
                               _numpy_entropy_loss(logits, temperature, gamma), rtol=1e-5)
  # Confident and spread over the codes: -log K; all inputs on one code: 0.
  one_hot = np.eye(12)[np.arange(48) % 12] * 100
  np.testing.assert_allclose(entropy.entropy_loss(jnp.asarray(one_hot)), -np.log(12), rtol=1e-5)
  np.testing.assert_allclose(entropy.entropy_loss(jnp.asarray(np.tile(one_hot[:1], (5, 1)))), 0,
                             atol=1e-6)


@pytest.mark.parametrize("levels", [(8, 8, 8), (8, 5, 5, 5), (3, 4)])
def test_fsq_every_index_decodes_to_the_code_that_encodes_to_it(levels):
  k = fsq.num_codes(levels)
  codes = fsq.indices_to_codes(jnp.arange(k), levels)                     # [K, d]
  np.testing.assert_array_equal(fsq.codes_to_indices(codes, levels), np.arange(k))
  # The grid: channel i takes L_i levels, (l - L//2) / (L//2), and all K codes are distinct.
  for i, level in enumerate(levels):
    half = level // 2
    np.testing.assert_allclose(np.unique(np.asarray(codes[:, i])),
                               (np.arange(level) - half) / half, atol=1e-7)
  assert len({tuple(c) for c in np.asarray(codes).tolist()}) == k
  # Quantizing lands on the grid: each result is the code of its index.
  z = jax.random.normal(jax.random.key(0), (500, len(levels))) * 3
  q = fsq.quantize(z, levels)
  np.testing.assert_array_equal(fsq.indices_to_codes(q.indices, levels), q.quantized)
  np.testing.assert_allclose(q.usage, len(np.unique(np.asarray(q.indices))) / k, rtol=1e-6)
  assert float(q.loss) == 0.0


def test_fsq_rounds_the_bounded_value_with_a_straight_through_gradient():
  levels = (5, 4)
  z = jnp.array([[0.0, 0.0], [0.3, -0.2], [10.0, -10.0]])
  bounded = fsq.bound(z, levels)
  np.testing.assert_allclose(bounded[0], [0.0, 0.0], atol=1e-6)   # 0 maps to 0's level
  np.testing.assert_allclose(fsq.to_codes(z, levels), np.round(bounded) / np.array([2, 2]))
  # Saturated inputs reach the end levels: 5 levels -> +-2, 4 levels -> -2 .. 1.
  np.testing.assert_allclose(np.round(bounded[2]), [2, -2])
  grad = jax.grad(lambda v: jnp.sum(fsq.to_codes(v, levels)))(z)
  want = jax.grad(lambda v: jnp.sum(fsq.bound(v, levels) / jnp.array([2.0, 2.0])))(z)
  np.testing.assert_allclose(grad, want, rtol=1e-6)


def test_lfq_codes_are_signs_and_indices_are_their_bits():
  z = jnp.array([[0.5, -2.0, 0.1], [-0.1, 0.0, 3.0]])
  q = lfq.to_codes(z)
  np.testing.assert_array_equal(q, [[1, -1, 1], [-1, -1, 1]])
  np.testing.assert_array_equal(lfq.codes_to_indices(q), [0b101, 0b001])
  np.testing.assert_array_equal(lfq.indices_to_codes(jnp.array([0b101, 0b001]), 3), q)
  np.testing.assert_array_equal(lfq.codes_to_indices(lfq.all_codes(4)), np.arange(16))
  grad = jax.grad(lambda v: jnp.sum(lfq.to_codes(v) * 2))(z)
  np.testing.assert_array_equal(grad, 2 * np.ones((2, 3)))


def test_lfq_entropy_loss_is_the_entropy_loss_over_all_sign_codes():
  z = np.random.default_rng(1).normal(size=(4, 3, 5)).astype(np.float32)
  codes = np.array(list(itertools.product([-1, 1], repeat=5)), np.float32)   # index order
  logits = 2 * z.reshape(-1, 5) @ codes.T
  np.testing.assert_allclose(lfq.code_logits(jnp.asarray(z)), logits, rtol=1e-5)
  q = lfq.quantize(jnp.asarray(z), commitment_cost=0.3, entropy_loss_weight=0.2,
                   entropy_temperature=0.5, diversity_weight=0.7)
  want_entropy = _numpy_entropy_loss(logits, 0.5, 0.7)
  np.testing.assert_allclose(q.entropy_loss, want_entropy, rtol=1e-4)
  signs = np.where(z > 0, 1.0, -1.0)
  commitment = np.mean((z - signs) ** 2)
  np.testing.assert_allclose(q.commitment_loss, commitment, rtol=1e-5)
  np.testing.assert_allclose(q.loss, 0.3 * commitment + 0.2 * want_entropy, rtol=1e-4)
  np.testing.assert_array_equal(q.indices, lfq.codes_to_indices(jnp.asarray(signs)))
  used = len(np.unique(np.asarray(q.indices)))
  np.testing.assert_allclose(q.usage, used / 32, rtol=1e-6)


@pytest.fixture
def data():
  rng = np.random.default_rng(0)
  return (jnp.asarray(rng.normal(size=(4, 5, 6, 8)), jnp.float32),
          jnp.asarray(rng.normal(size=(32, 8)), jnp.float32))


def test_residual_vq_of_depth_one_is_plain_vq(data):
  inputs, codebook = data
  plain = vq.quantize(inputs, codebook, commitment_cost=0.3, codebook_cost=0.7)
  residual = residual_vq.residual_quantize(inputs, codebook[None], commitment_cost=0.3,
                                           codebook_cost=0.7)
  np.testing.assert_array_equal(residual.indices[..., 0], plain.indices)
  np.testing.assert_allclose(residual.quantized, plain.quantized, rtol=1e-6)
  for name in ("codebook_loss", "commitment_loss", "loss"):
    np.testing.assert_allclose(getattr(residual, name), getattr(plain, name), rtol=1e-5)
  grads = [jax.grad(lambda x, c: jnp.sum(jnp.sin(f(x, c))), (0, 1))(inputs, codebook)
           for f in (lambda x, c: vq.quantize(x, c).quantized + vq.quantize(x, c).loss,
                     lambda x, c: (lambda r: r.quantized + r.loss)(
                         residual_vq.residual_quantize(x, c[None])))]
  for a, b in zip(*grads):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_residual_vq_error_falls_with_depth(tiny):
  config = tiny("vqvae")
  config.model.quantizer = config_lib.get_config("vqvae", quantizer="residual_vq").model.quantizer
  config.model.quantizer.update(num_codes=16, depth=4)
  model = build_model(config.model, (28, 28, 1), data_variance=0.1, seed=0)
  z = jax.random.normal(jax.random.key(0), (64, 7, 7, 8))
  model.quantizer.initialize_from_data(z, jax.random.key(1), 1)   # k-means of each stage
  codebooks = model.quantizer.codebook.vectors[...]
  errors = [float(jnp.mean((residual_vq.decode_indices(
      residual_vq.residual_quantize(z, codebooks[:q]).indices, codebooks[:q]) - z) ** 2))
            for q in (1, 2, 3, 4)]
  assert all(a > b for a, b in zip(errors, errors[1:])), errors
  assert errors[-1] < 0.75 * errors[0], errors


@pytest.mark.slow
def test_residual_vq_dropout_uses_a_prefix_of_the_stages_in_training_only(tiny):
  config = tiny("vqvae")
  config.model.quantizer = config_lib.get_config("vqvae", quantizer="residual_vq").model.quantizer
  config.model.quantizer.update(num_codes=16, depth=3, quantizer_dropout=True)
  model = build_model(config.model, (28, 28, 1), data_variance=0.1, seed=0)
  z = jax.random.normal(jax.random.key(0), (32, 7, 7, 8))
  full = model.quantizer(z, jax.random.key(1), training=False)
  dropped = model.quantizer(z, jax.random.key(1), training=True)
  stages = np.asarray(dropped.active[:, 0, 0, :]).sum(-1)            # [B] stages used
  assert set(stages.tolist()) == {1, 2, 3} and full.active is None
  codes = model.quantizer.codebook.vectors[...]
  for b in range(4):
    n = int(stages[b])
    want = sum(vq.lookup(full.indices[b, ..., q], codes[q]) for q in range(n))
    np.testing.assert_allclose(dropped.quantized[b], want, rtol=1e-5, atol=1e-6)


def _rotation(e, q):
  u, q_hat = e / np.linalg.norm(e), q / np.linalg.norm(q)
  w = (u + q_hat) / np.linalg.norm(u + q_hat)
  return np.eye(len(e)) - 2 * np.outer(w, w) + 2 * np.outer(q_hat, u)


def test_rotation_trick_keeps_the_values_and_rotates_the_gradient():
  rng = np.random.default_rng(2)
  e, q, g = (rng.normal(size=(6, 5)).astype(np.float32) for _ in range(3))
  out, vjp = jax.vjp(lambda x: vq.rotate_to(x, jnp.asarray(q)), jnp.asarray(e))
  np.testing.assert_allclose(out, q, rtol=1e-5, atol=1e-5)            # the values of z_q
  (grad,) = vjp(jnp.asarray(g))
  for n in range(6):
    rotation = _rotation(e[n].astype(np.float64), q[n].astype(np.float64))
    np.testing.assert_allclose(rotation.T @ rotation, np.eye(5), atol=1e-9)   # a rotation
    np.testing.assert_allclose(np.linalg.det(rotation), 1.0, rtol=1e-9)
    scale = np.linalg.norm(q[n]) / np.linalg.norm(e[n])
    np.testing.assert_allclose(grad[n], scale * rotation.T @ g[n], rtol=1e-4, atol=1e-5)
  # The straight-through estimator would pass g unchanged: the trick does not.
  assert not np.allclose(grad, g, atol=1e-2)
  st = vq.quantize(jnp.asarray(e), jnp.asarray(q))
  rot = vq.quantize(jnp.asarray(e), jnp.asarray(q), rotation_trick=True)
  np.testing.assert_allclose(rot.quantized, st.quantized, rtol=1e-5, atol=1e-5)


def test_vq_entropy_loss_is_over_the_codes_softmax_of_minus_distances(data):
  inputs, codebook = data
  q = vq.quantize(inputs, codebook, entropy_loss_weight=0.5, entropy_temperature=2.0)
  flat = np.asarray(inputs).reshape(-1, 8)
  d = ((flat[:, None] - np.asarray(codebook)[None]) ** 2).sum(-1)
  np.testing.assert_allclose(q.entropy_loss, _numpy_entropy_loss(-d, 2.0, 1.0), rtol=1e-4)
  plain = vq.quantize(inputs, codebook)
  np.testing.assert_allclose(q.loss, plain.loss + 0.5 * q.entropy_loss, rtol=1e-5)
  # It moves the encoder's outputs, and the codebook.
  g_inputs, g_codes = jax.grad(lambda x, c: vq.quantize(
      x, c, entropy_loss_weight=1.0, commitment_cost=0.0, codebook_cost=0.0).loss, (0, 1))(
          inputs, codebook)
  assert np.any(np.asarray(g_inputs)) and np.any(np.asarray(g_codes))


QUANTIZERS = {
    "vq_rotation": dict(name="vq", num_codes=16, rotation_trick=True, codebook_update="ema",
                        restart_every_steps=1),
    "vq_entropy": dict(name="vq", num_codes=16, entropy_loss_weight=0.1),
    "fsq": dict(name="fsq", levels=(4, 4)),
    "lfq": dict(name="lfq", dim=4),
    "residual_vq": dict(name="residual_vq", num_codes=16, depth=2, codebook_update="ema",
                        restart_every_steps=1, quantizer_dropout=True),
}


def _with_quantizer(config, keys):
  keys = dict(keys)
  config.model.quantizer = config_lib.get_config("vqvae", quantizer=keys["name"]).model.quantizer
  config.model.quantizer.update(keys)
  return config


@pytest.mark.slow
@pytest.mark.parametrize("variant", sorted(QUANTIZERS))
def test_each_quantizer_under_the_8_device_step_equals_one_device(tiny_config,
                                                                 assert_devices_agree, variant):
  # The entropy loss's softmax at temperature 0.01 scales the distances' rounding, which
  # differs between 8 per-device sums and one, by 100: a wider absolute tolerance there.
  atol = 5e-5 if variant == "vq_entropy" else 2e-6
  assert_devices_agree(_with_quantizer(tiny_config, QUANTIZERS[variant]), num_steps=2, atol=atol)


@pytest.mark.slow
@pytest.mark.parametrize("variant", sorted(QUANTIZERS))
def test_bfloat16_nets_keep_each_quantizers_math_in_float32(tiny_config, variant):
  _with_quantizer(tiny_config, QUANTIZERS[variant])
  model32 = build_model(tiny_config.model, (28, 28, 1), data_variance=0.1, seed=0)
  model16 = build_model(tiny_config.model, (28, 28, 1), data_variance=0.1, seed=0,
                        dtype=jnp.bfloat16)
  z = jax.random.normal(jax.random.key(0), (4, 7, 7, 8))
  assert model16.encoder(jnp.zeros((1, 28, 28, 1))).dtype == jnp.float32
  out16 = model16.quantizer(z.astype(jnp.bfloat16).astype(jnp.float32), jax.random.key(1))
  out32 = model32.quantizer(z.astype(jnp.bfloat16).astype(jnp.float32), jax.random.key(1))
  np.testing.assert_array_equal(out16.indices, out32.indices)
  assert out16.quantized.dtype == jnp.float32 and out16.loss.dtype == jnp.float32
  # Indices round-trip through the tokenizer, [B, h, w] (residual: [B, h, w, Q]).
  x = jax.random.uniform(jax.random.key(2), (2, 28, 28, 1))
  indices = model32.encode_to_indices(x)
  assert indices.shape == (2, 7, 7) + model32.index_shape
  full = model32(x, jax.random.key(3))
  np.testing.assert_array_equal(indices, full.internals.indices)
  np.testing.assert_allclose(model32.decode_from_indices(indices), full.reconstruction, atol=1e-5)


@pytest.mark.slow
def test_a_prior_refuses_residual_codes(tiny_config, tmp_path):
  from jaxvq.tokens.runs import encode_codes  # pylint: disable=g-import-not-at-top
  from jaxvq.train import train_and_evaluate  # pylint: disable=g-import-not-at-top
  _with_quantizer(tiny_config, dict(name="residual_vq", num_codes=16, depth=2))
  tiny_config.update(num_train_steps=2, num_devices=1)
  train_and_evaluate(tiny_config, str(tmp_path / "rvq"))
  assert encode_codes(str(tmp_path / "rvq"))["grid_shape"] == [7, 7, 2]
  prior = config_lib.get_config("pixelcnn")
  prior.dataset = f"codes:{tmp_path / 'rvq'}"
  with pytest.raises(ConfigError, match=r"residual \(\[h, w, Q\] = \[7, 7, 2\]\)"):
    train_and_evaluate(prior, str(tmp_path / "prior"))
