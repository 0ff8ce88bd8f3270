"""metrics.jsonl: one JSON object per logged row, written only by process 0."""
from __future__ import annotations

import json
import math
import os

import jax
import numpy as np


def _plain(value):
  value = np.asarray(value).item() if np.ndim(value) == 0 else np.asarray(value).tolist()
  if isinstance(value, float) and not math.isfinite(value):
    return str(value)
  return value


class MetricsWriter:

  def __init__(self, workdir: str):
    self.path = os.path.join(workdir, "metrics.jsonl")
    self.active = jax.process_index() == 0

  def write(self, step: int, split: str, metrics: dict) -> dict:
    row = {"step": int(step), "split": split, **{k: _plain(v) for k, v in sorted(metrics.items())}}
    if self.active:
      with open(self.path, "a") as f:
        f.write(json.dumps(row) + "\n")
    return row

  def read(self) -> list:
    if not os.path.exists(self.path):
      return []
    with open(self.path) as f:
      return [json.loads(line) for line in f if line.strip()]

  def truncate_after(self, step: int) -> None:
    """Drops rows logged after `step` (a resumed run writes them again)."""
    if not self.active or not os.path.exists(self.path):
      return
    rows = []
    with open(self.path) as f:
      for line in f:
        try:
          row = json.loads(line)
        except json.JSONDecodeError:
          continue  # a row cut short by a crash
        if row.get("step", 0) <= step:
          rows.append(line if line.endswith("\n") else line + "\n")
    tmp = self.path + ".tmp"
    with open(tmp, "w") as f:
      f.writelines(rows)
    os.replace(tmp, self.path)
