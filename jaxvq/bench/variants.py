"""Several VQ-VAE configs trained from scratch for the same steps, side by side: the codebook
variants of one config, or any configs (the quantizers), each optionally with a PixelCNN prior
trained on its codes.

The codebook variants of a config:
  gradient            codebook learned by gradient of the codebook loss
  ema                 EMA codebook
  ema_kmeans_restart  EMA codebook, k-means initialisation, dead-code restarts
"""
from __future__ import annotations

import json
import math
import os
import time

import ml_collections

from jaxvq.tokens.codes import CODES_PREFIX
from jaxvq.tokens.runs import encode_codes
from jaxvq.errors import RunError
from jaxvq.train import train_and_evaluate


def codebook_variants(base: ml_collections.ConfigDict) -> dict:
  """name -> `base` with the codebook updated that way (its quantizer must be vq)."""
  q = base.model.quantizer
  kmeans, restart = q.kmeans_init_batches or 10, q.restart_every_steps or 100
  overrides = {
      "gradient": dict(codebook_update="gradient", kmeans_init_batches=0, restart_every_steps=0),
      "ema": dict(codebook_update="ema", kmeans_init_batches=0, restart_every_steps=0),
      "ema_kmeans_restart": dict(codebook_update="ema", kmeans_init_batches=kmeans,
                                 restart_every_steps=restart),
  }
  variants = {}
  for name, keys in overrides.items():
    config = base.copy_and_resolve_references()
    config.model.quantizer.update(keys)
    variants[name] = config
  return variants


def at_dtypes(variants: dict, dtypes) -> dict:
  """name -> config for each config of `variants` at each of `dtypes` (config.dtype), named
  NAME_DTYPE: the same run at float32 and bfloat16 side by side."""
  runs = {}
  for name, base in variants.items():
    for dtype in dtypes:
      config = base.copy_and_resolve_references()
      config.dtype = dtype
      runs[f"{name}_{dtype}"] = config
  return runs


def bits_per_position(config: ml_collections.ConfigDict) -> float:
  """log2 of the codes one latent position can take: log2 K, times Q for residual VQ."""
  q = config.model.quantizer
  if q.name == "fsq":
    return sum(math.log2(level) for level in q.levels)
  if q.name == "lfq":
    return float(q.dim)
  return math.log2(q.num_codes) * (q.depth if q.name == "residual_vq" else 1)


def train_variants(variants: dict, workdir: str, steps: int = 0, prior=None,
                   prior_steps: int = 0) -> dict:
  """Trains each config of `variants` (name -> config) in WORKDIR/<name> for `steps` steps
  (0: its own), then, with `prior` (a prior's config), a prior on the codes of each
  single-grid one in WORKDIR/<name>_prior; returns name -> final test metrics, bits per
  position, wall seconds and the prior's bits per code (also in WORKDIR/results.json)."""
  if os.path.exists(workdir):
    raise RunError(f"{workdir} exists: the comparison trains from scratch, give it a new "
                   f"--workdir")
  results = {}
  for name, config in variants.items():
    config = config.copy_and_resolve_references()
    if steps:
      config.num_train_steps = steps
    config.eval_every_steps = config.checkpoint_every_steps = config.num_train_steps
    run_dir = os.path.join(workdir, name)
    start = time.perf_counter()
    metrics = train_and_evaluate(config, run_dir)
    results[name] = dict(metrics, wall_seconds=time.perf_counter() - start,
                         bits_per_position=bits_per_position(config))
    if prior is not None and config.model.quantizer.name != "residual_vq":
      prior_config = prior.copy_and_resolve_references()
      encode_codes(run_dir)
      prior_config.dataset = CODES_PREFIX + run_dir
      if prior_steps:
        prior_config.num_train_steps = prior_steps
      prior_metrics = train_and_evaluate(prior_config, os.path.join(workdir, f"{name}_prior"))
      results[name]["prior_bits_per_code"] = prior_metrics["bits_per_code"]
  with open(os.path.join(workdir, "results.json"), "w") as f:
    json.dump(results, f, indent=2)
  return results


def table(results: dict) -> str:
  """The results as a Markdown table."""
  lines = ["| variant | bits per position | test normalized MSE | codebook usage | perplexity | "
           "prior bits per code | wall time |", "|---|---|---|---|---|---|---|"]
  for name, r in results.items():
    prior = f"{r['prior_bits_per_code']:.2f}" if "prior_bits_per_code" in r else "-"
    lines.append(f"| {name} | {r['bits_per_position']:.1f} | {r['normalized_mse']:.4f} | "
                 f"{100 * r['codebook_usage']:.1f}% | {r['perplexity']:.1f} | {prior} | "
                 f"{r['wall_seconds']:.0f} s |")
  return "\n".join(lines)
