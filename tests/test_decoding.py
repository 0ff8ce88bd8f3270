"""The decoding ops of MaskGIT (jaxvq/ops/decoding.py): its training masks and decoding counts
follow the cosine schedule, and its parallel decoder unmasks each position once, keeps what it
unmasked and, at choice temperature 0, goes by confidence."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvq.ops import decoding


# ----------------------------------------------------------------------------- MaskGIT

# floor(49 cos(pi/2 (t + 1) / 8)) for t = 0..6 by hand (cos(pi/16) = 0.98079 -> 48.06, cos(pi/8)
# = 0.92388 -> 45.27, 0.83147 -> 40.74, 0.70711 -> 34.65, 0.55557 -> 27.22, 0.38268 -> 18.75,
# 0.19509 -> 9.56), then 0 after the last step.
MASKED_AFTER_49_8 = [48, 45, 40, 34, 27, 18, 9, 0]


def test_training_masks_follow_the_cosine_schedule():
  key, batch, n = jax.random.key(3), 4096, 49
  masks = np.asarray(decoding.masks_for_training(key, batch, n))
  counts = masks.sum(-1)
  r = np.asarray(jax.random.uniform(jax.random.split(key)[0], (batch,)), np.float64)
  np.testing.assert_array_equal(counts, np.ceil(np.cos(np.pi * r / 2) * n))
  assert counts.min() >= 1 and counts.max() <= n
  # E[cos(pi r / 2)] = 2 / pi for r ~ U[0, 1) (a linear schedule would give 1/2), plus the
  # ceil's half a code; and every position is masked as often as any other.
  assert abs(counts.mean() / n - (2 / np.pi + 0.5 / n)) < 0.015
  assert np.abs(masks.mean(0) - counts.mean() / n).max() < 0.05


def test_masked_count_by_hand_reaches_0_at_the_last_step():
  counts = [int(decoding.masked_count(t, 8, 49)) for t in range(8)]
  assert counts == MASKED_AFTER_49_8
  assert int(decoding.masked_count(3, 4, 10)) == 0 and int(decoding.masked_count(0, 1, 10)) == 0


def _code_dependent_logits(num_codes=16, n=49, seed=0):
  """logits_fn(tokens [B, N]) -> [B, N, K] that depends on every token (mask included)."""
  table = jax.random.normal(jax.random.key(seed), (num_codes + 1, n, num_codes))
  def logits_fn(tokens):
    own = table[tokens, jnp.arange(n)]                                   # [B, N, K]
    return own + 2.0 * jnp.mean(own, axis=1, keepdims=True)
  return logits_fn


def test_parallel_decode_unmasks_each_position_once_by_the_schedule_and_ends_unmasked():
  codes, unmasked_at = jax.jit(lambda key: decoding.parallel_decode(
      key, _code_dependent_logits(), 6, 49, 16, 8))(jax.random.key(0))
  codes, unmasked_at = np.asarray(codes), np.asarray(unmasked_at)
  assert codes.min() >= 0 and codes.max() < 16            # no mask token left
  assert unmasked_at.min() >= 0 and unmasked_at.max() < 8  # each position once, at one step
  per_step = np.stack([(unmasked_at == t).sum(-1) for t in range(8)], -1)        # [B, T]
  np.testing.assert_array_equal(per_step, np.diff([49] + MASKED_AFTER_49_8) * -np.ones((6, 1)))


def test_a_position_once_unmasked_keeps_its_code_and_the_loop_is_its_steps():
  """decode_step in a Python loop, fresh logits every step: a known code is never redrawn."""
  n, k, steps, key = 49, 16, 8, jax.random.key(1)
  codes = jnp.full((3, n), k, jnp.int32)
  known = np.zeros((3, n), bool)
  logits_fn = _code_dependent_logits()
  for t in range(steps):
    before = np.asarray(codes)
    codes, newly = decoding.decode_step(jax.random.fold_in(key, t), t, codes, logits_fn(codes),
                                        k, steps)
    newly = np.asarray(newly)
    assert not (newly & known).any()
    np.testing.assert_array_equal(np.asarray(codes)[known], before[known])
    np.testing.assert_array_equal(np.asarray(codes) == k, ~(known | newly))
    known |= newly
  assert known.all()
  looped, _ = decoding.parallel_decode(key, logits_fn, 3, n, k, steps)
  np.testing.assert_array_equal(looped, codes)


@pytest.mark.parametrize("top_k, temperature", [(0, 0.01), (1, 1.0)])
def test_with_as_many_steps_as_codes_the_most_confident_is_unmasked_first(top_k, temperature):
  """At choice temperature 0 the confidence is the model's probability of the drawn code (not
  of the filtered distribution: top_k = 1 would make them all 1)."""
  n, k = 20, 8
  strength = 1.0 + 0.1 * np.random.default_rng(0).permutation(n)   # code 0's logit per position
  logits = jnp.zeros((2, n, k)).at[:, :, 0].set(jnp.asarray(strength, jnp.float32))
  codes, unmasked_at = decoding.parallel_decode(
      jax.random.key(2), lambda tokens: logits, 2, n, k, n, temperature=temperature,
      choice_temperature=0.0, top_k=top_k)
  np.testing.assert_array_equal(codes, 0)
  np.testing.assert_array_equal(unmasked_at, np.argsort(np.argsort(-strength))[None].repeat(2, 0))
