"""Trains a jaxvq model: python train.py --config=configs/NAME.py --workdir=DIR [--config.key=value ...]

Rerunning the same command resumes from the latest checkpoint in DIR.
"""
from absl import app, flags
from ml_collections import config_flags

from jaxvq import cli, trainer

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics and images.")
config_flags.DEFINE_config_file("config", None, "A config file in configs/.", lock_config=True)
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  cli.quiet_logging()
  try:
    trainer.train_and_evaluate(FLAGS.config, FLAGS.workdir)
  except cli.USER_ERRORS as e:
    cli.exit_with(e)


if __name__ == "__main__":
  app.run(main)
