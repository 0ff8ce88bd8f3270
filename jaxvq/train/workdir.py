"""A run's workdir: its config.json, and which config may train in it.

  config.json        the run's configuration (the resolved config: shared keys + its model's)
  metrics.jsonl      one JSON row per log/eval: step, split, losses, ...
  checkpoints/<step> Orbax checkpoints of the train state
  images/            reconstructions_<step>.png, samples_<step>.png, code_usage_<step>.png
  codes/             a VQ-VAE's code grids (jaxvq/data/codes.py)
  events.out.tfevents.*  TensorBoard
"""
from __future__ import annotations

import json
import os
import shutil
import time

import ml_collections

from jaxvq import config as config_lib
from jaxvq.data import codes
from jaxvq.errors import RunError
from jaxvq.runtime import distributed, files
from jaxvq.train import checkpoint

_RUN_FILES = ("checkpoints", "metrics.jsonl", "images", codes.CODES_DIR, "config.json")


def saved_config(workdir: str) -> dict:
  """The workdir's config.json as written (by any jaxvq version)."""
  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    raise RunError(f"{workdir} holds no run (no config.json): train one with "
                   f"`python train.py --config=configs/NAME.py --workdir={workdir}`")
  try:
    with open(path) as f:
      return json.load(f)
  except json.JSONDecodeError as e:
    raise RunError(f"{path} is not valid JSON ({e}): it was not written by jaxvq, or was edited "
                   f"by hand") from e


def load_config(workdir: str) -> ml_collections.ConfigDict:
  """The workdir's run config, in today's form (config.migrate)."""
  return ml_collections.ConfigDict(config_lib.migrate(saved_config(workdir)))


def claim_workdir(config: ml_collections.ConfigDict, workdir: str) -> None:
  """Refuses a workdir holding a run of another config; with config.overwrite, clears it instead."""
  if not os.path.exists(os.path.join(workdir, "config.json")):
    if checkpoint.latest_step(os.path.join(workdir, "checkpoints")) is not None:
      raise RunError(f"{workdir} holds checkpoints but no config.json, so nothing says which "
                     f"run they are: use a new --workdir, or delete {workdir}/checkpoints")
    return
  saved = saved_config(workdir)
  differences = config_lib.differences(saved, config)
  if not differences:
    return
  if not config.overwrite:
    name = saved.get("model", {}).get("name")
    what = ("run of a different config" if name == config.model.name else
            f"run of model {name!r}, not {config.model.name!r}")
    shown = "; ".join(differences[:4]) + ("; ..." if len(differences) > 4 else "")
    raise RunError(f"{workdir} holds a {what} ({shown}): use a new --workdir, or add "
                   f"--config.overwrite=True to delete that run and start over")
  distributed.barrier("jaxvq: every process has read the old config")
  if distributed.is_main_process():
    # Each piece is first renamed away, the checkpoints first and config.json
    # last, so that a crash midway never leaves a checkpoint that a rerun would load.
    trash = os.path.join(workdir, ".overwritten")
    os.makedirs(trash, exist_ok=True)
    names = [n for n in os.listdir(workdir) if n.startswith("events.out.tfevents.")]
    names = list(_RUN_FILES[:-1]) + names + [_RUN_FILES[-1]]   # config.json last
    for name in names:
      if os.path.exists(os.path.join(workdir, name)):
        os.replace(os.path.join(workdir, name), os.path.join(trash, f"{name}.{time.time_ns()}"))
    shutil.rmtree(trash)


def write_config(config: ml_collections.ConfigDict, workdir: str) -> None:
  if distributed.is_main_process():
    files.write_atomically(os.path.join(workdir, "config.json"),
                           config.to_json_best_effort(indent=2, sort_keys=True))
