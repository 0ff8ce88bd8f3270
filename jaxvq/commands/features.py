"""Trains the feature network that `jaxvq quality` measures with:

  jaxvq features --dataset=fashion_mnist --workdir=workdirs/features_fashion_mnist \\
      [--num_steps=3000] [--batch_size=128] [--learning_rate=1e-3] [--feature_dim=128]
      [--image_size=32]   the images resized, for runs that train on them resized

The "classifier" model (jaxvq/models/classifier.py) of the dataset's training split,
trained by the training loop from `jaxvq.quality.features_config(dataset)` (for
Fashion-MNIST, configs/features_fashion_mnist.py): its checkpoints, metrics.jsonl and
config.json, and a rerun resumes (--config.overwrite=True replaces a run of another
config), as for `jaxvq train`. Then WORKDIR/features.json
(dataset, image shape, sizes and its accuracy on the whole test split); prints it.
"""
import json

from absl import flags

from jaxvq.quality.features import train_feature_network
from jaxvq.runtime import distributed

FLAGS = flags.FLAGS


def define_flags() -> None:
  flags.DEFINE_string("dataset", "fashion_mnist", "A labelled image dataset (as config.dataset).")
  flags.DEFINE_string("workdir", None, "Where the feature network goes.")
  flags.DEFINE_integer("num_steps", 3000, "Adam steps.")
  flags.DEFINE_integer("batch_size", 128, "Images per step.")
  flags.DEFINE_float("learning_rate", 1e-3, "Adam's learning rate.")
  flags.DEFINE_integer("feature_dim", 128, "Units of the feature layer (F).")
  flags.DEFINE_integer("image_size", 0, "Resize the images to this square size (as "
                       "config.image_size; 0: the dataset's own).")
  flags.DEFINE_integer("seed", 0, "Seed of the initialisation and the data order.")
  flags.DEFINE_bool("config.overwrite", False, "Delete a run of another config in --workdir "
                    "and train anew (config.overwrite, as for `jaxvq train`).")
  flags.DEFINE_integer("cpu_devices", 0, "On a CPU, split it into this many XLA devices (0: "
                       "one per core when the batch divides among them, else one; 1: one "
                       "device), as for `jaxvq train`.")
  flags.mark_flags_as_required(["workdir"])


def main(argv):
  del argv
  distributed.use_cpu_devices(FLAGS.cpu_devices, FLAGS.batch_size)
  description = train_feature_network(
      FLAGS.dataset, FLAGS.workdir, num_steps=FLAGS.num_steps, batch_size=FLAGS.batch_size,
      learning_rate=FLAGS.learning_rate, feature_dim=FLAGS.feature_dim, seed=FLAGS.seed,
      image_size=FLAGS.image_size,
      overwrite=FLAGS["config.overwrite"].value)
  print(json.dumps(description))
