"""The VQ-VAE's bound on the test NLL in bits per dimension: jaxvq bits --workdir=PRIOR_DIR

From a prior and the VQ-VAE whose codes it learned (trained with
--config.model.likelihood=discretized_gaussian): over the test split, the
prior's bits for each image's codes plus the decoder's bits for its pixels
given them, per pixel dimension (jaxvq/likelihood_bound.py; docs/likelihood.md).
Prints a table and one JSON line.
"""
import json

from absl import flags

from jaxvq import likelihood_bound

FLAGS = flags.FLAGS


def define_flags() -> None:
  flags.DEFINE_string("workdir", None, "Workdir of a trained PixelCNN prior.")
  flags.DEFINE_integer("num_examples", 0, "The first this many test images (0: all).")
  flags.mark_flags_as_required(["workdir"])


def main(argv):
  del argv
  bound = likelihood_bound.nll_bound(FLAGS.workdir, FLAGS.num_examples)
  print(f"test NLL bound over {bound['examples']} images, in bits per dimension "
        f"(D = {bound['num_dims']}):")
  for name in ("prior_bits_per_dim", "decoder_bits_per_dim", "label_bits_per_dim",
               "bits_per_dim"):
    print(f"  {name:22s} {bound[name]:.4f}")
  print(json.dumps(bound))
