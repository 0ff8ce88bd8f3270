"""Saves a VQ-VAE's code grids: python -m jaxvq.encode --workdir=VQVAE_DIR

Encodes every split of the run's dataset with its latest checkpoint into
VQVAE_DIR/codes/ (train.npz, test.npz, metadata.json), for the PixelCNN prior.
"""
import json

from absl import app, flags

from jaxvq import cli, trainer

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "Workdir of a trained VQ-VAE.")
flags.mark_flags_as_required(["workdir"])


def main(argv):
  del argv
  cli.quiet_logging()
  try:
    metadata = trainer.encode_codes(FLAGS.workdir)
  except cli.USER_ERRORS as e:
    cli.exit_with(e)
  print(json.dumps(metadata))


if __name__ == "__main__":
  app.run(main)
