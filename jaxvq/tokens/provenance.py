"""Which tokenizer run and checkpoint a prior's codes came from, recorded and checked.

A tokenizer's codes name their provenance in their metadata (the run id of its
workdir, the checkpoint's step and checksum: jaxvq/tokens/codes.py). A prior
copies it into PRIOR_DIR/tokenizer.json when it starts training, and every
later use of the prior (resuming it, loading it, sampling, `jaxvq bits`)
compares that record with what the tokenizer's workdir holds now: a prior is
refused codes of another run or checkpoint, whose indices mean other things.
"""
from __future__ import annotations

import json
import os
from typing import Mapping, Optional

from jaxvq import compat
from jaxvq.errors import RunError
from jaxvq.runtime import files
from jaxvq.tokens import codes as codes_lib

RECORD_FILE = "tokenizer.json"
_RECORD_KEYS = ("workdir", "run_id", "step", "checksum", "num_codes", "grid_shape")


def record_of(dataset: codes_lib.CodeDataset) -> dict:
  """The record a prior trained on `dataset` keeps: the codes' tokenizer, run, step, checksum."""
  metadata = dataset.metadata
  return {"workdir": codes_lib.workdir_of(dataset.name), "run_id": metadata.get("run_id"),
          "step": metadata["step"], "checksum": metadata.get("checksum"),
          "num_codes": metadata["num_codes"], "grid_shape": metadata["grid_shape"]}


def write_record(prior_workdir: str, dataset: codes_lib.CodeDataset) -> None:
  files.write_atomically(os.path.join(prior_workdir, RECORD_FILE),
                         json.dumps(record_of(dataset), indent=2) + "\n")


def read_record(prior_workdir: str) -> Optional[dict]:
  """The prior's record of its tokenizer (for a prior of jaxvq 0.2 or earlier, taken from its
  config.json); None if the workdir holds no prior that recorded one.

  Raises:
    RunError naming tokenizer.json when it is damaged.
  """
  path = os.path.join(prior_workdir, RECORD_FILE)
  if not os.path.exists(path):
    saved = _saved_config(prior_workdir)
    record = compat.tokenizer_record_of_config(saved)
    if record is None and saved is not None and codes_lib.is_codes(str(saved.get("dataset"))):
      # A prior of today's jaxvq writes its record before its config.json.
      raise RunError(f"{path} is missing: it says which VQ-VAE codes this prior learned; "
                     f"train a new prior on them in a new --workdir")
    return record
  try:
    with open(path) as f:
      record = json.load(f)
  except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
    record, why = None, str(e)
  else:
    missing = ([k for k in _RECORD_KEYS if k not in record] if isinstance(record, dict)
               else ["(not a JSON object)"])
    why = "missing: " + ", ".join(missing)
    record = record if not missing else None
  if record is None:
    raise RunError(f"{path} is damaged ({why}): it says which VQ-VAE codes this prior learned; "
                   f"train a new prior on them in a new --workdir")
  return record


def _saved_config(workdir: str) -> Optional[dict]:
  try:
    with open(os.path.join(workdir, "config.json")) as f:
      return json.load(f)
  except (OSError, ValueError):
    return None


def _retrain(tokenizer_workdir: str) -> str:
  return (f"train a new prior on its codes (python -m jaxvq encode --workdir={tokenizer_workdir}; "
          f"python train.py --config=... --config.dataset=codes:{tokenizer_workdir} in a new "
          f"--workdir)")


def mismatch(record: Optional[Mapping], run_id: Optional[str], metadata: Optional[Mapping],
             checksum=None) -> Optional[str]:
  """Why the tokenizer's workdir no longer holds what a prior learned, or None if it does.

  Args:
    record: the prior's record (`read_record`); None: nothing to compare.
    run_id: the run the tokenizer's workdir holds now (None: one that names no run).
    metadata: the metadata of its codes now (None: it has none; not compared).
    checksum: the stored checksum of its checkpoint of the recorded step now (None: not
      compared).
  """
  if record is None:
    return None
  workdir, step = record["workdir"], record["step"]
  if record["run_id"] and run_id != record["run_id"]:
    now = f"run {run_id}" if run_id else "no run that names itself"
    return (f"this prior was trained on codes of VQ-VAE run {record['run_id']} (step {step}) "
            f"in {workdir}, which now holds {now}: {_retrain(workdir)}")
  if metadata is not None and metadata["step"] != step:
    return (f"this prior was trained on the codes of the VQ-VAE's checkpoint of step {step}, "
            f"but codes:{workdir} now holds those of step {metadata['step']}: "
            f"{_retrain(workdir)}")
  checksums = [c for c in ((metadata or {}).get("checksum"), checksum) if c]
  if record["checksum"] and any(c != record["checksum"] for c in checksums):
    return (f"this prior was trained on codes of VQ-VAE run {record['run_id'] or '?'} (step "
            f"{step}) in {workdir}, whose checkpoint of step {step} is no longer the same (its "
            f"checksum differs): {_retrain(workdir)}")
  return None
