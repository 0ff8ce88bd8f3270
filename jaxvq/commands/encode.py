"""Saves a VQ-VAE's code grids: jaxvq encode --workdir=VQVAE_DIR

Encodes every split of the run's dataset with its latest checkpoint into
VQVAE_DIR/codes/ (train.npz, test.npz, metadata.json), for a prior.
The metadata names the run and the checkpoint (step and checksum) the codes
came from. The workdir is locked meanwhile: a training running in it is not
disturbed, and this command waits for nothing (it stops with one line).
"""
import json

from absl import flags

from jaxvq.tokens.runs import encode_codes

FLAGS = flags.FLAGS


def define_flags() -> None:
  flags.DEFINE_string("workdir", None, "Workdir of a trained VQ-VAE.")
  flags.mark_flags_as_required(["workdir"])


def main(argv):
  del argv
  print(json.dumps(encode_codes(FLAGS.workdir)))
