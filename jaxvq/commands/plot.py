"""Training curves of one or more runs, overlaid in one PNG.

  python -m jaxvq plot --workdir=DIR [--workdir=DIR2 ...] [--output=curves.png]

One panel per metric that some run logged, of loss, normalized MSE,
perplexity, codebook usage, bits per code and the VAE's KL: train
rows as lines, test rows as dots, one colour per run.
"""
from absl import flags

from jaxvq import figures
from jaxvq.errors import RunError
from jaxvq.train.metrics_writer import read_rows

FLAGS = flags.FLAGS


def define_flags() -> None:
  flags.DEFINE_multi_string("workdir", None, "A run's workdir; repeat the flag to compare runs.")
  flags.DEFINE_string("output", "curves.png", "The PNG to write.")
  flags.DEFINE_list("metrics", [], "The metrics to plot (default: those of figures.PANELS the "
                    "runs have).")


def main(argv):
  del argv
  if not FLAGS.workdir:
    raise RunError("give one or more --workdir=DIR")
  runs = {label: read_rows(workdir)
          for label, workdir in zip(figures.run_labels(FLAGS.workdir), FLAGS.workdir)}
  panels = figures.plot_runs(runs, FLAGS.output, FLAGS.metrics)
  print(f"wrote {FLAGS.output}: {', '.join(panels)}")
