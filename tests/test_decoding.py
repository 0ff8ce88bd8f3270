"""The decoding ops (jaxvq/ops/decoding.py) against NumPy references: top-k keeps exactly the
k largest, top-p the smallest set of most likely codes reaching p (never none), and
classifier-free guidance is the unconditional logits at 0 and the conditional ones at 1; MaskGIT's
training masks and decoding counts follow the cosine schedule, and its parallel decoder unmasks
each position once, keeps what it unmasked and, at choice temperature 0, goes by confidence."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvq.ops import decoding


def _logits(shape=(6, 20), seed=0):
  return np.random.default_rng(seed).normal(size=shape).astype(np.float32) * 2.0


def _kept(filtered):
  return np.asarray(filtered) > -1e29


def _top_p_reference(logits, p):
  """Per row: the most likely codes, in order, until their probabilities sum to >= p."""
  keep = np.zeros(logits.shape, bool)
  for row, values in enumerate(logits.astype(np.float64)):
    probs = np.exp(values - values.max())
    probs /= probs.sum()
    total = 0.0
    for index in np.argsort(-values):
      keep[row, index] = True
      total += probs[index]
      if total >= p:
        break
  return keep


@pytest.mark.parametrize("k", [1, 2, 7, 19])
def test_top_k_keeps_exactly_the_k_largest(k):
  logits = _logits()
  kept = _kept(decoding.filter_top_k(jnp.asarray(logits), k))
  reference = np.zeros_like(kept)
  np.put_along_axis(reference, np.argsort(-logits, axis=-1)[:, :k], True, axis=-1)
  np.testing.assert_array_equal(kept, reference)
  assert (kept.sum(-1) == k).all()
  np.testing.assert_array_equal(np.asarray(decoding.filter_top_k(jnp.asarray(logits), k))[kept],
                                logits[kept])   # the kept logits are unchanged


@pytest.mark.parametrize("k", [0, 20])
def test_top_k_of_0_or_every_code_changes_nothing(k):
  logits = _logits()
  np.testing.assert_array_equal(decoding.filter_top_k(jnp.asarray(logits), k), logits)


@pytest.mark.parametrize("p", [1e-4, 0.1, 0.3, 0.5, 0.8, 0.95, 0.999])
def test_top_p_keeps_the_smallest_set_reaching_p(p):
  logits = _logits(seed=1)
  kept = _kept(decoding.filter_top_p(jnp.asarray(logits), p))
  np.testing.assert_array_equal(kept, _top_p_reference(logits, p))
  assert (kept.sum(-1) >= 1).all()
  probs = np.asarray(jax.nn.softmax(logits.astype(np.float64), axis=-1))
  assert ((probs * kept).sum(-1) >= p - 1e-6).all()


def test_top_p_keeps_at_least_the_most_likely_code_and_1_keeps_all():
  logits = _logits(seed=2)
  kept = _kept(decoding.filter_top_p(jnp.asarray(logits), 1e-9))
  np.testing.assert_array_equal(kept, logits == logits.max(-1, keepdims=True))
  np.testing.assert_array_equal(decoding.filter_top_p(jnp.asarray(logits), 1.0), logits)


def test_guidance_0_is_the_unconditional_logits_1_the_conditional_and_past_1_beyond():
  conditional, unconditional = _logits(seed=3), _logits(seed=4)
  guided = lambda s: np.asarray(decoding.guided_logits(conditional, unconditional, s))
  np.testing.assert_array_equal(guided(0.0), unconditional)
  np.testing.assert_allclose(guided(1.0), conditional, atol=1e-6)
  np.testing.assert_allclose(guided(3.0), unconditional + 3 * (conditional - unconditional),
                             rtol=1e-6, atol=1e-6)


def test_sample_logits_draws_only_kept_codes_and_top_k_1_is_the_argmax():
  logits = jnp.asarray(_logits((4, 20), seed=5))
  keys = jax.random.split(jax.random.key(0), 200)
  draws = jax.vmap(lambda key: decoding.sample_logits(key, logits, 0.7, 5, 0.8))(keys)
  kept = _kept(decoding.filter_top_p(decoding.filter_top_k(logits / 0.7, 5), 0.8))
  assert np.take_along_axis(kept[None].repeat(200, 0), np.asarray(draws)[..., None], -1).all()
  greedy = decoding.sample_logits(jax.random.key(1), logits, 1.3, top_k=1)
  np.testing.assert_array_equal(greedy, np.argmax(np.asarray(logits), axis=-1))
  assert greedy.dtype == jnp.int32


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
