"""What jaxvq draws: image grids as PNG, code-usage histograms, training curves.

matplotlib is used through Figure objects, never pyplot, so that jaxvq leaves the
user's matplotlib backend alone.
"""
from __future__ import annotations

import math
import os

import numpy as np

from jaxvq.errors import RunError


def grid(images: np.ndarray, columns: int = 0, pad: int = 1) -> np.ndarray:
  """[N, H, W, C] floats in [0, 1] -> one uint8 image [rows*(H+pad), cols*(W+pad), C]."""
  images = np.clip(np.asarray(images, np.float32), 0.0, 1.0)
  n, h, w, c = images.shape
  columns = columns or int(math.ceil(math.sqrt(n)))
  rows = int(math.ceil(n / columns))
  out = np.ones((rows * (h + pad) + pad, columns * (w + pad) + pad, c), np.float32)
  for i, image in enumerate(images):
    r, col = divmod(i, columns)
    out[pad + r * (h + pad):pad + r * (h + pad) + h, pad + col * (w + pad):pad + col * (w + pad) + w] = image
  return np.round(out * 255.0).astype(np.uint8)


def save_png(path: str, images: np.ndarray, columns: int = 0) -> np.ndarray:
  """Writes the grid of `images` as a PNG; returns the grid."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
  g = grid(images, columns)
  Image.fromarray(g[..., 0] if g.shape[-1] == 1 else g).save(path)
  return g


def interleave_rows(originals: np.ndarray, reconstructions: np.ndarray, columns: int) -> np.ndarray:
  """Rows of originals, each followed by the row of their reconstructions."""
  n = (len(originals) // columns) * columns
  a = originals[:n].reshape((-1, columns) + originals.shape[1:])
  b = reconstructions[:n].reshape((-1, columns) + reconstructions.shape[1:])
  return np.stack([a, b], axis=1).reshape((-1,) + originals.shape[1:])


def side_by_side(image_sets: list, originals=None, columns: int = 12) -> np.ndarray:
  """The first `columns` images of each set [N, H, W, C] (uint8, or floats in [0, 1]), one row
  a set, below a row of `originals` when given: for `save_png(path, ..., columns)`."""
  rows = ([] if originals is None else [originals]) + list(image_sets)
  return np.concatenate([np.asarray(r[:columns], np.float32) / (255.0 if r.dtype == np.uint8
                                                                 else 1.0) for r in rows])


def save_usage_histogram(path: str, counts: np.ndarray, title: str = "") -> str:
  """A bar chart of how often each code was used."""
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top
  counts = np.asarray(counts, np.float64)
  os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
  fig = Figure(figsize=(8, 3))
  ax = fig.subplots()
  ax.bar(np.arange(len(counts)), counts, width=1.0, color="tab:blue")
  used = int(np.sum(counts > 0))
  ax.set_title(f"{title}  ({used}/{len(counts)} codes used)".strip())
  ax.set_xlabel("code index")
  ax.set_ylabel("assignments")
  ax.set_xlim(-0.5, len(counts) - 0.5)
  fig.tight_layout()
  fig.savefig(path, dpi=80)
  return path


PANELS = ("loss", "normalized_mse", "perplexity", "codebook_usage", "bits_per_code", "kl")


def run_labels(workdirs) -> list:
  """Each run's name: its folder's name, or its path where two names clash."""
  names = [os.path.basename(os.path.normpath(w)) for w in workdirs]
  return [n if names.count(n) == 1 else os.path.normpath(w) for n, w in zip(names, workdirs)]


def plot_runs(runs: dict, output: str, metrics=()) -> list:
  """Writes the curves of `runs` (label -> the metric rows a run logged: metrics.jsonl's,
  jaxvq.train.metrics_writer.read_rows) to `output`; returns the metrics plotted."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top
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
