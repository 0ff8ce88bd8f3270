"""Trains one VQ-VAE config in several codebook variants and prints their test metrics:

  jaxvq compare --config=configs/vqvae_fashion_mnist.py --workdir=workdirs/compare \\
      [--steps=2000] [--config.key=value ...]

Each variant trains from scratch for the same number of steps in
WORKDIR/<variant> (jaxvq/bench/variants.py); results also go to
WORKDIR/results.json.
"""
from absl import flags
from ml_collections import config_flags

from jaxvq.bench import variants

FLAGS = flags.FLAGS


def define_flags() -> None:
  flags.DEFINE_string("workdir", None, "Parent directory of the variants' runs.")
  flags.DEFINE_integer("steps", 0, "Training steps per variant (0: the config's num_train_steps).")
  config_flags.DEFINE_config_file("config", None, "A VQ-VAE config file.", lock_config=False)
  flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  del argv
  results = variants.train_variants(FLAGS.config, FLAGS.workdir, FLAGS.steps)
  print("\n" + variants.table(FLAGS.config, results, FLAGS.steps))
