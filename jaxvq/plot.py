"""Training curves of one or more runs, overlaid in one PNG.

  python -m jaxvq.plot --workdir=DIR [--workdir=DIR2 ...] [--output=curves.png]

One panel per metric that some run logged, of loss, normalized MSE,
perplexity, codebook usage, bits per code and the VAE's KL: train
rows as lines, test rows as dots, one colour per run.
"""
from __future__ import annotations

import json
import os

from absl import flags

from jaxvq import cli
from jaxvq.errors import RunError

FLAGS = flags.FLAGS


def define_flags() -> None:
  """The command's flags: defined only when it runs, so that importing the module defines none."""
  flags.DEFINE_multi_string("workdir", None, "A run's workdir; repeat the flag to compare runs.")
  flags.DEFINE_string("output", "curves.png", "The PNG to write.")
  flags.DEFINE_list("metrics", [], "The metrics to plot (default: those of PANELS the runs have).")

PANELS = ("loss", "normalized_mse", "perplexity", "codebook_usage", "bits_per_code", "kl")


def read_rows(workdir: str) -> list:
  path = os.path.join(workdir, "metrics.jsonl")
  if not os.path.exists(path):
    raise RunError(f"{workdir} has no metrics.jsonl: it is not a jaxvq workdir, or has not "
                   f"logged yet")
  with open(path) as f:
    return [json.loads(line) for line in f if line.strip()]


def _labels(workdirs) -> list:
  """Each run's name: its folder's name, or its path where two names clash."""
  names = [os.path.basename(os.path.normpath(w)) for w in workdirs]
  return [n if names.count(n) == 1 else os.path.normpath(w) for n, w in zip(names, workdirs)]


def plot_runs(workdirs, output: str, metrics=()) -> list:
  """Writes the curves of `workdirs` to `output`; returns the metrics plotted."""
  # A Figure of its own, not pyplot: jaxvq leaves the user's matplotlib backend alone.
  import matplotlib  # pylint: disable=g-import-not-at-top
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top
  runs = {label: read_rows(w) for label, w in zip(_labels(workdirs), workdirs)}
  logged = {k for rows in runs.values() for row in rows for k in row}
  panels = list(metrics) or [m for m in PANELS if m in logged]
  missing = [m for m in panels if m not in logged]
  if missing or not panels:
    raise RunError(f"no run logged {missing or 'any of ' + ', '.join(PANELS)}; they logged "
                   f"{sorted(logged - {'step', 'split'})}")
  fig = Figure(figsize=(4 * len(panels), 3.2))
  axes = fig.subplots(1, len(panels), squeeze=False)
  colours = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
  for ax, metric in zip(axes[0], panels):
    for n, (label, rows) in enumerate(runs.items()):
      colour = colours[n % len(colours)]
      for split, style in (("train", dict(linestyle="-")), ("test", dict(linestyle="", marker="o"))):
        points = [(r["step"], r[metric]) for r in rows if r["split"] == split and metric in r]
        if points:
          steps, values = zip(*points)
          ax.plot(steps, values, color=colour, label=f"{label} ({split})", **style)
    ax.set_title(metric)
    ax.set_xlabel("step")
    ax.grid(alpha=0.3)
  axes[0][0].legend(fontsize="small")
  fig.tight_layout()
  os.makedirs(os.path.dirname(output) or ".", exist_ok=True)
  fig.savefig(output, dpi=90)
  return panels


def main(argv):
  del argv
  if not FLAGS.workdir:
    raise RunError("give one or more --workdir=DIR")
  panels = plot_runs(FLAGS.workdir, FLAGS.output, FLAGS.metrics)
  print(f"wrote {FLAGS.output}: {', '.join(panels)}")


if __name__ == "__main__":
  define_flags()
  cli.run(main)
