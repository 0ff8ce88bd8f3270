"""Wall time of compiled calls, waited for."""
from __future__ import annotations

import statistics
import time

import jax


def median_seconds(fn, repeats: int) -> float:
  """The median wall time of `repeats` calls of `fn`, each waited for."""
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn())
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def flops_of(compiled) -> float:
  analysis = compiled.cost_analysis()
  if isinstance(analysis, (list, tuple)):
    analysis = analysis[0]
  return float(analysis.get("flops", 0.0)) if analysis else 0.0
