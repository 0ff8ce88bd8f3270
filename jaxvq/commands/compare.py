"""Trains VQ-VAE configs side by side and prints their test metrics:

  jaxvq compare --config=configs/vqvae_fashion_mnist.py --workdir=workdirs/compare
      the config's three codebook variants (gradient, ema, ema_kmeans_restart)
  jaxvq compare --configs=configs/vqvae_fashion_mnist.py \\
      --configs=configs/vqvae_fsq_fashion_mnist.py --workdir=workdirs/quantizers \\
      [--prior=configs/pixelcnn_fashion_mnist.py]
      several configs (FILE.py or FILE.py:ARG), each named by its file and argument; with
      --prior, a prior on each single-grid variant's codes too (its bits per code)

Each trains from scratch for the same --steps in WORKDIR/<variant>
(jaxvq/bench/variants.py); the results also go to WORKDIR/results.json.
"""
import os

from absl import flags
from ml_collections import config_flags

from jaxvq import config as config_lib
from jaxvq.bench import variants
from jaxvq.errors import ConfigError

FLAGS = flags.FLAGS


def define_flags() -> None:
  flags.DEFINE_string("workdir", None, "Parent directory of the variants' runs.")
  flags.DEFINE_integer("steps", 0, "Training steps per variant (0: each config's own).")
  config_flags.DEFINE_config_file("config", None, "A VQ-VAE config: its codebook variants.",
                                  lock_config=False)
  flags.DEFINE_multi_string("configs", [], "A VQ-VAE config file (FILE.py or FILE.py:ARG) to "
                            "compare; repeat the flag for each.")
  flags.DEFINE_list("dtypes", [], "Train each config at each of these dtypes (config.dtype: "
                    "float32, bfloat16), named NAME_DTYPE; empty: each config's own.")
  flags.DEFINE_string("prior", "", "A PixelCNN config trained on each variant's codes.")
  flags.DEFINE_integer("prior_steps", 0, "Its training steps (0: its own).")
  flags.mark_flags_as_required(["workdir"])


def _name(path: str) -> str:
  """configs/vqvae_fsq_fashion_mnist.py:8,5,5,5 -> vqvae_fsq_fashion_mnist_8-5-5-5."""
  stem, _, arg = path.partition(":")
  stem = os.path.splitext(os.path.basename(stem))[0]
  return f"{stem}_{arg.replace(',', '-')}" if arg else stem


def main(argv):
  del argv
  if FLAGS.configs and FLAGS.config is None:
    runs = {_name(p): config_lib.load_file(p) for p in FLAGS.configs}
  elif FLAGS.config is not None and not FLAGS.configs:
    runs = variants.codebook_variants(FLAGS.config)
  else:
    raise ConfigError("give --config=FILE (its codebook variants) or --configs=FILE for each "
                      "config to compare")
  if FLAGS.dtypes:
    runs = variants.at_dtypes(runs, FLAGS.dtypes)
  for config in runs.values():   # every variant refused before the first one trains
    config_lib.check(config)
  prior = config_lib.load_file(FLAGS.prior) if FLAGS.prior else None
  results = variants.train_variants(runs, FLAGS.workdir, FLAGS.steps, prior, FLAGS.prior_steps)
  print("\n" + variants.table(results))
