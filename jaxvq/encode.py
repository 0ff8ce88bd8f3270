"""Saves a VQ-VAE's code grids: python -m jaxvq.encode --workdir=VQVAE_DIR

Encodes every split of the run's dataset with its latest checkpoint into
VQVAE_DIR/codes/ (train.npz, test.npz, metadata.json), for the PixelCNN prior.
"""
import json

from absl import flags

from jaxvq import cli, trainer

FLAGS = flags.FLAGS


def define_flags() -> None:
  """The command's flags: defined only when it runs, so that importing the module defines none."""
  flags.DEFINE_string("workdir", None, "Workdir of a trained VQ-VAE.")
  flags.mark_flags_as_required(["workdir"])


def main(argv):
  del argv
  metadata = trainer.encode_codes(FLAGS.workdir)
  print(json.dumps(metadata))


if __name__ == "__main__":
  define_flags()
  cli.run(main)
