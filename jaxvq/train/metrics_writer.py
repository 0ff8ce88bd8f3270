"""metrics.jsonl (one JSON object per logged row) and TensorBoard event files, by process 0.

The event files (tensorboardX: no TensorFlow needed) sit beside metrics.jsonl:
`tensorboard --logdir=WORKDIR` shows every metric as `<split>/<name>` and the
image grids. A resumed run tells TensorBoard to drop the events logged after
its checkpoint (purge_step), as it drops those rows from metrics.jsonl.
"""
from __future__ import annotations

import json
import math
import os

import numpy as np

from jaxvq.errors import RunError
from jaxvq.runtime import distributed, files

METRICS_FILE = "metrics.jsonl"


def read_rows(workdir: str, split: str | None = None) -> list:
  """The rows of a workdir's metrics.jsonl (those of `split` only, if given); a row cut short
  by a crash is skipped."""
  path = os.path.join(workdir, METRICS_FILE)
  if not os.path.exists(path):
    raise RunError(f"{workdir} has no {METRICS_FILE}: it is not a jaxvq workdir, or has not "
                   f"logged yet")
  rows = []
  with open(path) as f:
    for line in f:
      try:
        row = json.loads(line)
      except json.JSONDecodeError:
        continue
      if split is None or row.get("split") == split:
        rows.append(row)
  return rows


def _plain(value):
  value = np.asarray(value).item() if np.ndim(value) == 0 else np.asarray(value).tolist()
  if isinstance(value, float) and not math.isfinite(value):
    return str(value)
  return value


class MetricsWriter:

  def __init__(self, workdir: str):
    self.workdir = workdir
    self.path = os.path.join(workdir, METRICS_FILE)
    self.active = distributed.is_main_process()
    self._events = None

  def events(self, purge_step=None):
    """The TensorBoard writer (None on processes other than 0)."""
    if self._events is None and self.active:
      from tensorboardX import SummaryWriter  # pylint: disable=g-import-not-at-top
      self._events = SummaryWriter(self.workdir, purge_step=purge_step, flush_secs=30)
    return self._events

  def write(self, step: int, split: str, metrics: dict) -> dict:
    row = {"step": int(step), "split": split, **{k: _plain(v) for k, v in sorted(metrics.items())}}
    if self.active:
      try:
        with open(self.path, "a") as f:
          f.write(json.dumps(row) + "\n")
      except OSError as e:  # a row cut short is skipped when read, dropped when resumed
        files.raise_if_disk_full(e, self.path)
        raise
      for name, value in row.items():
        if name not in ("step", "split") and isinstance(value, (int, float)):
          self.events().add_scalar(f"{split}/{name}", value, step)
    return row

  def image(self, tag: str, step: int, grid: np.ndarray) -> None:
    """An image grid, uint8 [H, W, C], in TensorBoard."""
    if self.active:
      self.events().add_image(tag, grid, step, dataformats="HWC")

  def close(self) -> None:
    if self._events is not None:
      self._events.close()

  def read(self) -> list:
    return read_rows(self.workdir) if os.path.exists(self.path) else []

  def truncate_after(self, step: int) -> None:
    """Drops rows logged after `step` (a resumed run writes them again)."""
    if not self.active:
      return
    self.events(purge_step=step + 1)
    if not os.path.exists(self.path):
      return
    kept = [row for row in read_rows(self.workdir) if row.get("step", 0) <= step]
    files.write_atomically(self.path, "".join(json.dumps(row) + "\n" for row in kept))
