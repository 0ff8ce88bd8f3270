"""New images from a prior and its VQ-VAE's decoder.

  jaxvq sample --workdir=PRIOR_DIR --num_samples=64 [--label=3] [--temperature=1.0] \\
      [--top_k=K] [--top_p=P] [--guidance=S] [--steps=T] [--choice_temperature=C] \\
      [--seed=0] --output=samples.png

samples code grids from the prior (one compiled loop),
decodes them with the VQ-VAE checkpoint the codes were made with, and writes
the PNG grid and the codes (OUTPUT with .npy; a directory gets samples.png and
samples.npy, and any other OUTPUT is refused before sampling). The same seed gives the same
images. A class-conditional prior samples `--label`, or without it every
class in turn (one class per column). `jaxvq bench --sampling` times the samplers.
"""
import os

import numpy as np
from absl import flags

from jaxvq import figures, sampling
from jaxvq.commands import sampling_flags

FLAGS = flags.FLAGS


def define_flags() -> None:
  flags.DEFINE_string("workdir", None, "Workdir of a trained prior.")
  flags.DEFINE_integer("num_samples", 64, "How many images.")
  flags.DEFINE_integer("label", None, "Class to sample (class-conditional priors only).")
  sampling_flags.define_flags()
  flags.DEFINE_integer("seed", 0, "Random seed.")
  flags.DEFINE_string("output", "samples.png", "PNG file of the sample grid, or a directory "
                      "(for its samples.png).")
  flags.mark_flags_as_required(["workdir"])


def main(argv):
  del argv
  output = sampling.output_path(FLAGS.output)
  pictures, codes, columns = sampling.sample_images(FLAGS.workdir, FLAGS.num_samples,
                                                    FLAGS.label, FLAGS.temperature, FLAGS.seed,
                                                    **sampling_flags.options())
  figures.save_png(output, pictures, columns)
  np.save(os.path.splitext(output)[0] + ".npy", codes)
  print(f"wrote {output} and {os.path.splitext(output)[0]}.npy")
