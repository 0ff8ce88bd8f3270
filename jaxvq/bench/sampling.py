"""How fast a PixelCNN prior samples: its three samplers (jaxvq.sampling), each compiled once
and timed on the same key; they draw the same codes, so only their speed differs."""
from __future__ import annotations

import jax

from jaxvq.bench.timing import median_seconds
from jaxvq.sampling import SAMPLERS, make_sampler, sample_labels


def sampling_speed(exp, state, num_samples: int, repeats: int = 5) -> dict:
  """Images/s of each sampler (the median of `repeats` runs after one that compiles)."""
  key = jax.random.key(0)
  labels = sample_labels(exp.model(state), num_samples)
  rates = {}
  for how in SAMPLERS:
    sampler = make_sampler(exp, num_samples, how=how)
    jax.block_until_ready(sampler(state, key, labels))   # compiles
    rates[how] = num_samples / median_seconds(lambda: sampler(state, key, labels), repeats)
  return {"num_samples": num_samples, "grid": list(exp.model(state).grid_shape),
          "backend": jax.default_backend(), "device": jax.devices()[0].device_kind,
          **{f"{how}_images_per_s": round(rate, 1) for how, rate in rates.items()},
          "speedup_over_python_loop": round(rates["compiled_loop"] / rates["python_loop"], 1),
          "speedup_over_loop_without_cache": round(
              rates["compiled_loop"] / rates["compiled_loop_without_cache"], 1)}
