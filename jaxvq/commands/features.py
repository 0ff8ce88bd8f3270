"""Trains the feature network that `jaxvq quality` measures with:

  jaxvq features --dataset=fashion_mnist --workdir=workdirs/features_fashion_mnist \\
      [--num_steps=3000] [--batch_size=128] [--learning_rate=1e-3] [--feature_dim=128]

A small CNN classifier of the dataset's training split (jaxvq/quality/features.py),
saved as an Orbax checkpoint with WORKDIR/features.json (dataset, image shape,
sizes and its accuracy on the whole test split) and metrics.jsonl.
"""
import json

from absl import flags

from jaxvq.quality.features import train_feature_network

FLAGS = flags.FLAGS


def define_flags() -> None:
  flags.DEFINE_string("dataset", "fashion_mnist", "A labelled image dataset (as config.dataset).")
  flags.DEFINE_string("workdir", None, "Where the feature network goes.")
  flags.DEFINE_integer("num_steps", 3000, "Adam steps.")
  flags.DEFINE_integer("batch_size", 128, "Images per step.")
  flags.DEFINE_float("learning_rate", 1e-3, "Adam's learning rate.")
  flags.DEFINE_integer("feature_dim", 128, "Units of the feature layer (F).")
  flags.DEFINE_integer("seed", 0, "Seed of the initialisation and the data order.")
  flags.mark_flags_as_required(["workdir"])


def main(argv):
  del argv
  description = train_feature_network(
      FLAGS.dataset, FLAGS.workdir, num_steps=FLAGS.num_steps, batch_size=FLAGS.batch_size,
      learning_rate=FLAGS.learning_rate, feature_dim=FLAGS.feature_dim, seed=FLAGS.seed)
  print(json.dumps(description))
