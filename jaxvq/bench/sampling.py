"""How fast a prior samples: each of its samplers (jaxvq.sampling.sampler_names), compiled once
and timed on the same key; they draw the same codes, so only their speed differs."""
from __future__ import annotations

import jax

from jaxvq.bench.timing import median_seconds
from jaxvq.sampling import make_sampler, sample_labels, sampler_names


def sampling_speed(exp, state, num_samples: int, repeats: int = 5) -> dict:
  """Images/s of each sampler (the median of `repeats` runs after one that compiles), and
  the default's speed-up over each other one."""
  key = jax.random.key(0)
  prior = exp.model(state)
  labels = sample_labels(prior, num_samples)
  rates = {}
  for how in sampler_names(prior):
    sampler = make_sampler(exp, num_samples, how=how)
    jax.block_until_ready(sampler(state, key, labels))   # compiles
    rates[how] = num_samples / median_seconds(lambda: sampler(state, key, labels), repeats)
  default, *others = rates
  speedups = {f"speedup_over_{how.replace('compiled_loop_', 'loop_')}":
              round(rates[default] / rates[how], 1) for how in others}
  return {"num_samples": num_samples, "grid": list(prior.grid_shape),
          "backend": jax.default_backend(), "device": jax.devices()[0].device_kind,
          **{f"{how}_images_per_s": round(rate, 1) for how, rate in rates.items()}, **speedups}
