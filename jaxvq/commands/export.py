"""A trained run as `jax.export` functions, to serve with jax alone (no jaxvq).

  jaxvq export --workdir=DIR --output=DIR [--platforms=cpu,cuda,tpu] [--batch=N] \\
      [--temperature=1.0] [--top_k=K] [--top_p=P] [--guidance=S] [--steps=T] \\
      [--choice_temperature=C]

writes, for a tokenizer's (VQ-VAE's) workdir, encode.jaxexport (images -> code
grids) and decode.jaxexport (code grids -> images); for a prior's, sample.jaxexport
((key, labels) -> images, its tokenizer's decoder included, with the sampling
flags baked in); and manifest.json (shapes, dtypes, value ranges, the run and its
checkpoint, versions). The weights are inside the files. The batch is symbolic
unless --batch fixes it. OUTPUT must be new, empty, or an earlier export of the
same run (replaced); anything else is refused. Loading and calling: docs/export.md.
"""
from absl import flags

from jaxvq import export
from jaxvq.commands import sampling_flags

FLAGS = flags.FLAGS


def define_flags() -> None:
  flags.DEFINE_string("workdir", None, "Workdir of a trained tokenizer (VQ-VAE) or prior.")
  flags.DEFINE_string("output", None, "Directory for the exported functions and manifest.json.")
  flags.DEFINE_list("platforms", list(export.DEFAULT_PLATFORMS),
                    f"Platforms to lower for, among {', '.join(export.PLATFORMS)}.")
  flags.DEFINE_integer("batch", None, "A fixed batch size (default: symbolic where the function "
                       f"takes it from an input; an unconditional prior samples "
                       f"{export.DEFAULT_SAMPLE_BATCH}).")
  sampling_flags.define_flags()
  flags.mark_flags_as_required(["workdir", "output"])


def main(argv):
  del argv
  manifest = export.export_run(FLAGS.workdir, FLAGS.output, FLAGS.platforms, FLAGS.batch,
                               FLAGS.temperature, **sampling_flags.options())
  written = ", ".join(f"{f['file']} ({f['bytes'] / 1e6:.1f} MB)"
                      for f in manifest["functions"].values())
  print(f"wrote {FLAGS.output}: {written}, {export.MANIFEST}")
