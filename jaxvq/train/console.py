"""What training prints: one short line per log step and per evaluation (process 0 only),
under a tqdm bar on a terminal. metrics.jsonl and TensorBoard keep every metric in full."""
from __future__ import annotations

import sys

from jaxvq.runtime import distributed


def _number(value: float) -> str:
  return f"{value:.4g}"


def train_line(step: int, total: int, metrics: dict, names) -> str:
  """`step 100/2000  loss 0.1234  normalized_mse 0.09876  ...  1523 images/s`."""
  shown = [f"loss {_number(metrics['loss'])}"] + [
      f"{name} {_number(metrics[name])}" for name in names if name in metrics]
  return (f"step {step}/{total}  " + "  ".join(shown) +
          f"  {metrics['images_per_sec']:.0f} images/s")


def eval_line(step: int, num_examples: int, metrics: dict, names) -> str:
  """`test at step 1000 (10000 examples): loss 0.05  normalized_mse 0.0449  ...`."""
  shown = [f"loss {_number(metrics['loss'])}"] + [
      f"{name} {_number(metrics[name])}" for name in names if name in metrics]
  return f"test at step {step} ({num_examples} examples): " + "  ".join(shown)


class Console:
  """Prints lines (process 0 only), above a tqdm progress bar when stderr is a terminal."""

  def __init__(self, start: int, total: int):
    self.active = distributed.is_main_process()
    self.bar = None
    if self.active and sys.stderr.isatty():
      from tqdm import tqdm  # pylint: disable=g-import-not-at-top
      self.bar = tqdm(total=total, initial=start, unit="step", dynamic_ncols=True)

  def print(self, line: str) -> None:
    if not self.active:
      return
    if self.bar is not None:
      self.bar.write(line)
    else:
      print(line, flush=True)

  def advance(self, n: int = 1) -> None:
    if self.bar is not None:
      self.bar.update(n)

  def close(self) -> None:
    if self.bar is not None:
      self.bar.close()
