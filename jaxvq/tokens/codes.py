"""A tokenizer's code grids on disk, and the dataset a prior trains on (`codes:TOKENIZER_DIR`).

TOKENIZER_DIR/codes/ holds train.npz and test.npz (arrays `codes` [N, h, w], or
[N, h, w, Q] for residual codes, in the smallest unsigned integer type that fits
K, and `labels` [N]) and metadata.json: K, the grid shape, where the codes came
from (the tokenizer's run id, checkpoint step and checkpoint checksum: their
provenance, jaxvq/tokens/provenance.py), the dataset, the image shape, the
number of classes, and the SHA-256 of each split's file. The folder is written
to a temporary one and renamed when complete, so a crash never leaves half a
set of codes behind; everything is checked when read, and a damaged file is a
one-line error naming it and the command that writes it again.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import zipfile
from typing import Mapping, Optional

import jax.numpy as jnp
import numpy as np

from jaxvq.data.sources import ArraySource
from jaxvq.errors import DatasetError
from jaxvq.runtime import files

CODES_PREFIX = "codes:"
CODES_DIR = "codes"
METADATA_FILE = "metadata.json"
SPLITS = ("train", "test")
# metadata.json's keys and their types; run_id and checksum are None for codes of a run that
# named none (an early jaxvq's), the files' digests absent in codes written before jaxvq 0.3.
_METADATA_TYPES = {"num_codes": int, "grid_shape": list, "step": int, "dataset": str,
                   "image_shape": list, "num_classes": int}


def is_codes(dataset: str) -> bool:
  """Whether `config.dataset` names a tokenizer's codes (codes:TOKENIZER_DIR)."""
  return dataset.startswith(CODES_PREFIX)


def workdir_of(dataset: str) -> str:
  """The tokenizer's workdir that a prior's `config.dataset` ("codes:DIR") names."""
  if not is_codes(dataset):
    raise DatasetError(f"a prior's dataset is a tokenizer run's codes, codes:TOKENIZER_WORKDIR; "
                       f"got {dataset!r}")
  return dataset[len(CODES_PREFIX):]


def absolute(dataset: str) -> str:
  """codes:DIR with DIR made absolute, so that a prior's run is restored from any directory."""
  return CODES_PREFIX + os.path.abspath(workdir_of(dataset))


def codes_dir(tokenizer_workdir: str) -> str:
  return os.path.join(tokenizer_workdir, CODES_DIR)


def _rebuild(tokenizer_workdir: str) -> str:
  return f"write them again with `python -m jaxvq encode --workdir={tokenizer_workdir}`"


def read_metadata(tokenizer_workdir: str) -> Optional[dict]:
  """The codes' metadata, checked; None if there are no codes.

  Raises:
    DatasetError naming metadata.json when it cannot be read or lacks a key.
  """
  path = os.path.join(codes_dir(tokenizer_workdir), METADATA_FILE)
  if not os.path.exists(path):
    return None
  try:
    with open(path) as f:
      metadata = json.load(f)
  except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
    raise DatasetError(f"{path} is damaged ({e}): {_rebuild(tokenizer_workdir)}") from e
  bad = ([k for k, kind in _METADATA_TYPES.items()
          if not isinstance(metadata.get(k), kind) or isinstance(metadata.get(k), bool)]
         if isinstance(metadata, dict) else ["(not a JSON object)"])
  if not bad and not (2 <= len(metadata["grid_shape"]) <= 3 and metadata["num_codes"] >= 2):
    bad = ["grid_shape", "num_codes"]
  if bad:
    raise DatasetError(f"{path} is damaged (missing or wrong: {', '.join(bad)}): "
                       f"{_rebuild(tokenizer_workdir)}")
  return metadata


def smallest_dtype(num_codes: int):
  for dtype in (np.uint8, np.uint16, np.uint32):
    if num_codes - 1 <= np.iinfo(dtype).max:
      return dtype
  raise ValueError(f"K={num_codes} codes do not fit in 32 bits")


def _sha256(path: str) -> str:
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      digest.update(block)
  return digest.hexdigest()


def write(tokenizer_workdir: str, splits: Mapping[str, tuple], metadata: dict) -> dict:
  """Writes TOKENIZER_DIR/codes/ whole: `splits` maps train and test to (codes, labels).

  Args:
    tokenizer_workdir: the tokenizer's workdir.
    splits: split -> (codes [N, h, w] or [N, h, w, Q] ints in [0, K), labels [N]).
    metadata: num_codes, step, run_id, checksum, dataset, image_shape, num_classes.

  Returns:
    The metadata written: the given one with the grid shape and each file's SHA-256.
  """
  dtype = smallest_dtype(metadata["num_codes"])
  tmp = files.fresh_temporary_dir(codes_dir(tokenizer_workdir))
  digests = {}
  for split, (codes, labels) in splits.items():
    path = os.path.join(tmp, f"{split}.npz")
    np.savez(path, codes=np.asarray(codes).astype(dtype), labels=np.asarray(labels))
    digests[split] = _sha256(path)
  grid_shape = list(np.shape(splits["train"][0])[1:])
  metadata = {**metadata, "grid_shape": grid_shape, "sha256": digests}
  with open(os.path.join(tmp, METADATA_FILE), "w") as f:
    json.dump(metadata, f, indent=2)
  files.publish_dir(tmp, codes_dir(tokenizer_workdir))
  return metadata


def _read_split(tokenizer_workdir: str, split: str, metadata: dict) -> ArraySource:
  """One split's codes and labels, checked against the metadata."""
  path = os.path.join(codes_dir(tokenizer_workdir), f"{split}.npz")
  damaged = lambda why: DatasetError(f"{path} is damaged ({why}): {_rebuild(tokenizer_workdir)}")
  if not os.path.exists(path):
    raise damaged("missing")
  expected = metadata.get("sha256", {}).get(split)
  if expected and _sha256(path) != expected:
    raise damaged("its bytes changed since it was written: the SHA-256 differs")
  try:
    with np.load(path) as f:
      codes, labels = f["codes"], f["labels"]
  except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
    raise damaged(str(e) or type(e).__name__) from e
  if list(codes.shape[1:]) != metadata["grid_shape"] or len(labels) != len(codes):
    raise damaged(f"codes {list(codes.shape)}, labels {list(labels.shape)}: not [N, "
                  f"*{metadata['grid_shape']}] and [N]")
  if not np.issubdtype(codes.dtype, np.integer) or (codes.size and (
      codes.min() < 0 or codes.max() >= metadata["num_codes"])):
    raise damaged(f"codes outside [0, {metadata['num_codes']})")
  return ArraySource(codes, labels)


@dataclasses.dataclass
class CodeDataset:
  """Code grids of a tokenizer, served like an image dataset (inputs = [N, h, w] codes)."""
  name: str
  train: ArraySource
  test: ArraySource
  metadata: dict

  @property
  def grid_shape(self) -> tuple:
    """(h, w), or (h, w, Q) for residual codes."""
    return tuple(self.metadata["grid_shape"])

  @property
  def input_shape(self) -> tuple:
    return self.grid_shape

  @property
  def image_shape(self) -> tuple:
    """The shape the training loop and its batches see: the code grid's."""
    return self.grid_shape

  @property
  def num_codes(self) -> int:
    return self.metadata["num_codes"]

  @property
  def num_classes(self) -> int:
    return self.metadata["num_classes"]

  @property
  def image_dims(self) -> int:
    """Pixels x channels of the images the codes stand for."""
    return math.prod(self.metadata["image_shape"])

  def preprocess(self, inputs, key):
    del key
    return inputs.astype(jnp.int32)


def load(tokenizer_workdir: str) -> CodeDataset:
  """The codes of the tokenizer run in `tokenizer_workdir`, as a prior's dataset, checked.

  Raises:
    DatasetError when there are no codes (with the command that encodes them), or a file is
    damaged (naming it, with the command that writes it again).
  """
  metadata = read_metadata(tokenizer_workdir)
  if metadata is None:
    raise DatasetError(f"no codes in {codes_dir(tokenizer_workdir)}: encode them first with "
                       f"`python -m jaxvq encode --workdir={tokenizer_workdir}`")
  splits = {split: _read_split(tokenizer_workdir, split, metadata) for split in SPLITS}
  return CodeDataset(CODES_PREFIX + tokenizer_workdir, splits["train"], splits["test"], metadata)
