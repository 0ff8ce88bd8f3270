"""Reading workdirs that earlier jaxvq versions wrote: every fix-up in one place.

Why: a user's trained runs must keep resuming, sampling and measuring after an
upgrade. What differs in workdirs of jaxvq 0.1 (and, for the prior's record,
0.2):
  - config.json: every model's keys in one flat `config.model` namespace (the
    VQ-VAE's quantizer keys among them, and a VAE `likelihood` a VQ-VAE never
    read); a prior's VQ-VAE as top-level `vqvae_workdir` / `vqvae_step`;
  - checkpoints: the nearest-code quantizer's variables on the VQ-VAE itself,
    not under `quantizer/`;
  - no `.jaxvq` record of the files a run wrote;
  - a prior's tokenizer provenance (vqvae_run_id, vqvae_step, vqvae_checksum)
    inside its model config instead of PRIOR_DIR/tokenizer.json (0.1 and 0.2).
Dropped in: jaxvq 0.4 (workdirs of 0.1 and 0.2 then need the 0.3 release to be
read once, which rewrites their config.json and record as they resume).

It imports nothing of jaxvq but the codes' dataset prefix, so that every layer may use it.
"""
from __future__ import annotations

import copy
import os
from typing import Callable, Iterable, Mapping, Optional

import jax
import numpy as np

from jaxvq.tokens.codes import CODES_PREFIX

DROPPED_IN = "0.4"

# ----------------------------------------------------------------------------- config.json

# A prior's provenance keys in its model config (0.1 and 0.2); now in PRIOR_DIR/tokenizer.json.
_PRIOR_PROVENANCE_KEYS = ("vqvae_step", "vqvae_run_id", "vqvae_checksum")


def upgrade_config(saved: Mapping, quantizer_keys: Iterable[str]) -> dict:
  """A config.json of any jaxvq version with its keys where today's jaxvq reads them
  (unknown keys are left for the caller's schema to drop).

  Args:
    saved: the config as written.
    quantizer_keys: the VQ quantizer's keys (0.1 kept them in `config.model`).
  """
  saved = copy.deepcopy(dict(saved))
  model = dict(saved.get("model", {}))
  name = model.get("name", "vqvae")
  workdir = saved.pop("vqvae_workdir", None)
  saved.pop("vqvae_step", None)
  if name == "pixelcnn":
    if workdir and not str(saved.get("dataset", "")).startswith(CODES_PREFIX):
      saved["dataset"] = CODES_PREFIX + workdir
    for key in _PRIOR_PROVENANCE_KEYS:
      model.pop(key, None)
  if name == "vqvae" and "quantizer" not in model:
    model["quantizer"] = {k: model.pop(k) for k in list(model)
                          if k in quantizer_keys and k != "name"}
  if name == "vqvae" and model.get("likelihood") not in (None, "mse", "discretized_gaussian",
                                                         "l1"):
    # The shared namespace held the VAE's likelihood, which a VQ-VAE never read: its
    # reconstruction term was the MSE.
    model.pop("likelihood")
  saved["model"] = model
  return saved


def tokenizer_record_of_config(saved: Optional[Mapping]) -> Optional[dict]:
  """A prior's record of its tokenizer (jaxvq.tokens.provenance) from a config.json of jaxvq
  0.2 or earlier; None when it names none."""
  if not isinstance(saved, Mapping) or not isinstance(saved.get("model"), Mapping):
    return None
  model, dataset = saved["model"], str(saved.get("dataset", ""))
  workdir = saved.get("vqvae_workdir") or (dataset[len(CODES_PREFIX):]
                                           if dataset.startswith(CODES_PREFIX) else None)
  step = model.get("vqvae_step", saved.get("vqvae_step", -1))
  if not workdir or step in (None, -1):
    return None
  return {"workdir": workdir, "run_id": model.get("vqvae_run_id") or None, "step": step,
          "checksum": model.get("vqvae_checksum") or None,
          "num_codes": model.get("num_codes"), "grid_shape": None}


# ----------------------------------------------------------------------------- checkpoints

# jaxvq 0.1 kept the nearest-code quantizer's variables on the VQ-VAE itself.
_V0_1_QUANTIZER_PATHS = {
    "codebook": ("quantizer", "codebook", "vectors"),
    "cluster_size": ("quantizer", "codebook", "cluster_size"),
    "embed_sum": ("quantizer", "codebook", "embed_sum"),
    "usage": ("quantizer", "codebook", "usage"),
    "project_in": ("quantizer", "project_in"),
    "project_out": ("quantizer", "project_out"),
}


def state_path(path: tuple) -> tuple:
  """Where a train-state leaf that jaxvq 0.1 saved at `path` (a tuple of names) lives now:
  its VQ-VAE's quantizer variables (params/codebook, model_state/usage, and Adam's mu/nu of
  them) moved under quantizer/; every other path is unchanged."""
  for i, name in enumerate(path[:-1]):
    if name in ("params", "model_state", "mu", "nu") and path[i + 1] in _V0_1_QUANTIZER_PATHS:
      return path[:i + 1] + _V0_1_QUANTIZER_PATHS[path[i + 1]] + path[i + 2:]
  return path


def restore_moved(restore_as_saved: Callable, like, names: Callable):
  """A checkpoint of jaxvq 0.1 in today's tree: `restore_as_saved()` reads the saved tree as
  it is, each leaf is moved by `state_path` (`names` turns a pytree key path into a tuple of
  names); None if that does not give `like`'s leaves, shapes and dtypes exactly (then it is
  another architecture's)."""
  try:
    saved = restore_as_saved()
  except Exception:  # pylint: disable=broad-except
    return None
  moved = {state_path(names(path)): leaf
           for path, leaf in jax.tree_util.tree_flatten_with_path(saved)[0]}
  wanted, treedef = jax.tree_util.tree_flatten_with_path(like)
  leaves = []
  for path, target in wanted:
    leaf = moved.pop(names(path), None)
    if leaf is None or np.shape(leaf) != target.shape or np.dtype(leaf.dtype) != target.dtype:
      return None
    leaves.append(jax.device_put(leaf, target.sharding))
  return None if moved else jax.tree_util.tree_unflatten(treedef, leaves)


# ----------------------------------------------------------------------------- workdirs

def is_unrecorded_run(saved: Optional[Mapping]) -> bool:
  """Whether a config.json (None: none) is a jaxvq run's from before workdirs had a record."""
  return isinstance(saved, Mapping) and isinstance(saved.get("model"), Mapping) and \
      "dataset" in saved


def unrecorded_run_files(workdir: str, run_names: Iterable[str], events_prefix: str) -> list:
  """The run files of a workdir that a jaxvq without records wrote: its known names."""
  run_names = set(run_names)
  return [n for n in os.listdir(workdir) if n in run_names or n.startswith(events_prefix)]
