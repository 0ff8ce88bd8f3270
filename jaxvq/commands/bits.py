"""The VQ-VAE's bound on the test NLL in bits per dimension: jaxvq bits --workdir=PRIOR_DIR

From a prior and the VQ-VAE whose codes it learned (trained with
--config.model.likelihood=discretized_gaussian): over the test split, the
prior's bits for each image's codes plus the decoder's bits for its pixels
given them, per pixel dimension (jaxvq/likelihood_bound.py; docs/likelihood.md).
Prints a table and one JSON line.

With --codes_only, the prior's part alone, for any prior and tokenizer: its test bits per
code (MaskGIT's by its decoder that unmasks one code per step in raster order, an exact
likelihood of that decoder; likelihood_bound.prior_bits).
"""
import json

from absl import flags

from jaxvq import likelihood_bound

FLAGS = flags.FLAGS


def define_flags() -> None:
  flags.DEFINE_string("workdir", None, "Workdir of a trained prior (for the bound: one with an "
                      "exact likelihood, on a discretized-Gaussian VQ-VAE's codes).")
  flags.DEFINE_integer("num_examples", 0, "The first this many test images (0: all).")
  flags.DEFINE_bool("codes_only", False, "Only the prior's test bits per code (any prior; "
                    "no pixel likelihood needed).")
  flags.mark_flags_as_required(["workdir"])


def main(argv):
  del argv
  if FLAGS.codes_only:
    bits = likelihood_bound.prior_bits(FLAGS.workdir, FLAGS.num_examples)
    print(f"test bits per code over {bits['examples']} code grids "
          f"({bits['likelihood']} likelihood): {bits['prior_bits_per_code']:.4f}")
    print(json.dumps(bits))
    return
  bound = likelihood_bound.nll_bound(FLAGS.workdir, FLAGS.num_examples)
  print(f"test NLL bound over {bound['examples']} images, in bits per dimension "
        f"(D = {bound['num_dims']}):")
  for name in ("prior_bits_per_dim", "decoder_bits_per_dim", "label_bits_per_dim",
               "bits_per_dim"):
    print(f"  {name:22s} {bound[name]:.4f}")
  print(json.dumps(bound))
