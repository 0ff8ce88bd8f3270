"""Trains a jaxvq model: python train.py --config=configs/NAME.py --workdir=DIR [--config.key=value ...]

Rerunning the same command resumes from the latest complete checkpoint in DIR.
SIGTERM saves a checkpoint of the current step and exits; a workdir holding a
run of another config is refused unless --config.overwrite=True.
"""
from absl import flags
from ml_collections import config_flags

from jaxvq import cli, trainer

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics and images.")
config_flags.DEFINE_config_file("config", None, "A config file in configs/.", lock_config=True)
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  del argv
  trainer.train_and_evaluate(FLAGS.config, FLAGS.workdir)


if __name__ == "__main__":
  cli.run(main)
