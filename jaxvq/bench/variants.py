"""One VQ-VAE config trained in several codebook variants from scratch, side by side.

  gradient            codebook learned by gradient of the codebook loss
  ema                 EMA codebook
  ema_kmeans_restart  EMA codebook, k-means initialisation, dead-code restarts
"""
from __future__ import annotations

import json
import os
import time

import ml_collections

from jaxvq.errors import RunError
from jaxvq.train import train_and_evaluate


def variants(quantizer_config) -> dict:
  """name -> the config.model.quantizer keys that make the variant."""
  kmeans = quantizer_config.kmeans_init_batches or 10
  restart = quantizer_config.restart_every_steps or 100
  return {
      "gradient": dict(codebook_update="gradient", kmeans_init_batches=0, restart_every_steps=0),
      "ema": dict(codebook_update="ema", kmeans_init_batches=0, restart_every_steps=0),
      "ema_kmeans_restart": dict(codebook_update="ema", kmeans_init_batches=kmeans,
                                 restart_every_steps=restart),
  }


def train_variants(base: ml_collections.ConfigDict, workdir: str, steps: int = 0) -> dict:
  """Trains each variant of `base` in WORKDIR/<variant> for `steps` steps (0: the config's);
  returns name -> final test metrics and wall seconds (also in WORKDIR/results.json)."""
  if os.path.exists(workdir):
    raise RunError(f"{workdir} exists: the comparison trains from scratch, give it a new "
                   f"--workdir")
  base = base.copy_and_resolve_references()
  if steps:
    base.num_train_steps = steps
  base.eval_every_steps = base.checkpoint_every_steps = base.num_train_steps
  results = {}
  for name, overrides in variants(base.model.quantizer).items():
    config = base.copy_and_resolve_references()
    config.model.quantizer.update(overrides)
    start = time.perf_counter()
    metrics = train_and_evaluate(config, os.path.join(workdir, name))
    results[name] = dict(metrics, wall_seconds=time.perf_counter() - start)
  with open(os.path.join(workdir, "results.json"), "w") as f:
    json.dump(results, f, indent=2)
  return results


def table(base: ml_collections.ConfigDict, results: dict, steps: int = 0) -> str:
  """The results as a Markdown table, under a line naming the setting."""
  lines = [f"{base.dataset}, K={base.model.quantizer.num_codes}, "
           f"{steps or base.num_train_steps} steps "
           f"at batch {base.batch_size}", "",
           "| variant | test normalized MSE | perplexity | codebook usage | wall time |",
           "|---|---|---|---|---|"]
  for name, r in results.items():
    lines.append(f"| {name} | {r['normalized_mse']:.4f} | {r['perplexity']:.1f} | "
                 f"{100 * r['codebook_usage']:.1f}% | {r['wall_seconds']:.0f} s |")
  return "\n".join(lines)
