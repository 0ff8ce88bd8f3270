"""Another program (e.g. the PyTorch reference) timed in turns with jaxvq's step."""
from __future__ import annotations

import json
import shlex
import statistics
import subprocess

from jaxvq.bench.step import StepTimer
from jaxvq.errors import ConfigError


def run_peer(command: str) -> float:
  done = subprocess.run(shlex.split(command), capture_output=True, text=True, check=False)
  if done.returncode != 0:
    raise ConfigError(f"--peer command failed ({done.returncode}): {done.stderr.strip()[-300:]}")
  lines = [line for line in done.stdout.splitlines() if line.strip().startswith("{")]
  if not lines:
    raise ConfigError(f"--peer command printed no JSON line: {done.stdout.strip()[-300:]}")
  return float(json.loads(lines[-1])["images_per_s"])


def compare_with_peer(timer: StepTimer, command: str, rounds: int, steps: int) -> dict:
  """jaxvq and the peer in turns, `rounds` times each: their images/s and the ratio of medians."""
  ours, theirs = [], []
  for _ in range(rounds):
    ours.append(timer.config.batch_size / timer.time(steps))
    theirs.append(run_peer(command))
  return {"jaxvq_images_per_s": [round(r, 1) for r in ours],
          "peer_images_per_s": [round(r, 1) for r in theirs],
          "ratio_of_medians": round(statistics.median(ours) / statistics.median(theirs), 3),
          "peer": command}
