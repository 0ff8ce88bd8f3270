"""Codebook health benchmark: one config trained in three codebook variants, side by side.

  python -m jaxvq.codebook_benchmark --config=configs/vqvae_fashion_mnist.py \\
      --workdir=workdirs/codebook_benchmark [--steps=2000] [--config.key=value ...]

Trains each variant from scratch for the same number of steps, in
WORKDIR/<variant>, and prints a Markdown table of the final test metrics:
  gradient            codebook learned by gradient of the codebook loss
  ema                 EMA codebook
  ema_kmeans_restart  EMA codebook, k-means initialisation, dead-code restarts
Results are also written to WORKDIR/results.json.
"""
import json
import os
import time

from absl import flags
from ml_collections import config_flags

from jaxvq import cli, errors, trainer

FLAGS = flags.FLAGS


def define_flags() -> None:
  """The command's flags: defined only when it runs, so that importing the module defines none."""
  flags.DEFINE_string("workdir", None, "Parent directory of the three runs.")
  flags.DEFINE_integer("steps", 0, "Training steps per variant (0: the config's num_train_steps).")
  config_flags.DEFINE_config_file("config", None, "A VQ-VAE config file.", lock_config=False)
  flags.mark_flags_as_required(["config", "workdir"])


def variants(model_config):
  kmeans = model_config.kmeans_init_batches or 10
  restart = model_config.restart_every_steps or 100
  return {
      "gradient": dict(codebook_update="gradient", kmeans_init_batches=0, restart_every_steps=0),
      "ema": dict(codebook_update="ema", kmeans_init_batches=0, restart_every_steps=0),
      "ema_kmeans_restart": dict(codebook_update="ema", kmeans_init_batches=kmeans,
                                 restart_every_steps=restart),
  }


def main(argv):
  del argv
  if os.path.exists(FLAGS.workdir):
    raise errors.RunError(f"{FLAGS.workdir} exists: the benchmark trains from scratch, "
                          f"give it a new --workdir")
  base = FLAGS.config
  if FLAGS.steps:
    base.num_train_steps = FLAGS.steps
  base.eval_every_steps = base.checkpoint_every_steps = base.num_train_steps
  results = {}
  for name, overrides in variants(base.model).items():
    config = base.copy_and_resolve_references()
    config.model.update(overrides)
    start = time.perf_counter()
    metrics = trainer.train_and_evaluate(config, os.path.join(FLAGS.workdir, name))
    results[name] = dict(metrics, wall_seconds=time.perf_counter() - start)
  with open(os.path.join(FLAGS.workdir, "results.json"), "w") as f:
    json.dump(results, f, indent=2)
  k = base.model.num_codes
  print(f"\n{base.dataset}, K={k}, {base.num_train_steps} steps at batch {base.batch_size}\n")
  print("| variant | test normalized MSE | perplexity | codebook usage | wall time |")
  print("|---|---|---|---|---|")
  for name, r in results.items():
    print(f"| {name} | {r['normalized_mse']:.4f} | {r['perplexity']:.1f} | "
          f"{100 * r['codebook_usage']:.1f}% | {r['wall_seconds']:.0f} s |")


if __name__ == "__main__":
  define_flags()
  cli.run(main)
