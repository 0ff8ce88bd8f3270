"""A VQ-VAE's code grids on disk, and the dataset a prior trains on (`codes:VQVAE_WORKDIR`).

VQVAE_DIR/codes/ holds train.npz and test.npz (arrays `codes` [N, h, w] in the
smallest unsigned integer type that fits K, and `labels` [N]) and
metadata.json (K, the grid shape, the checkpoint step, the VQ-VAE's run id and
the checkpoint's checksum, the dataset, the image shape, the number of classes).
It is written to a temporary folder and renamed when complete, so a crash never
leaves half a set of codes behind. A prior records the run, step and checksum
of its codes, and is refused any others (`check_same_run`).
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
from typing import Mapping, Optional

import jax
import jax.numpy as jnp
import numpy as np

from jaxvq.config import CODES_PREFIX
from jaxvq.data.batches import eval_batches
from jaxvq.data.sources import ArraySource
from jaxvq.errors import DatasetError, RunError
from jaxvq.runtime import files, sharding

CODES_DIR = "codes"


def workdir_of(dataset: str) -> str:
  """The VQ-VAE workdir that a prior's `config.dataset` ("codes:DIR") names."""
  if not dataset.startswith(CODES_PREFIX):
    raise DatasetError(f"a prior's dataset is a VQ-VAE run's codes, codes:VQVAE_WORKDIR; "
                       f"got {dataset!r}")
  return dataset[len(CODES_PREFIX):]


def codes_dir(vqvae_workdir: str) -> str:
  return os.path.join(vqvae_workdir, CODES_DIR)


def read_metadata(vqvae_workdir: str):
  """The codes' metadata, or None if there are no codes."""
  path = os.path.join(codes_dir(vqvae_workdir), "metadata.json")
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)


_UNCHECKED = object()


def check_same_run(prior_model: Mapping, vqvae_workdir: str, run_id: Optional[str],
                   checksum=_UNCHECKED) -> None:
  """Refuses a VQ-VAE run, or checkpoint, other than the one whose codes a prior learned.

  Args:
    prior_model: the prior's config section, with the vqvae_run_id, vqvae_step and
      vqvae_checksum it recorded ("" where its codes did not say: an earlier jaxvq's).
    vqvae_workdir: the VQ-VAE's workdir.
    run_id: the run that workdir (or its codes) holds now; None if it says none.
    checksum: the stored checksum of its checkpoint of the recorded step now (None: it has
      none); left out, it is not compared.

  Raises:
    RunError saying which run the prior was trained on and how to train one on the new run.
  """
  recorded_id, step = prior_model.get("vqvae_run_id", ""), prior_model.get("vqvae_step", -1)
  recorded_checksum = prior_model.get("vqvae_checksum", "")
  retrain = (f"train a new prior on its codes (python -m jaxvq encode --workdir={vqvae_workdir}; "
             f"python train.py --config=... --config.dataset=codes:{vqvae_workdir} in a new "
             f"--workdir)")
  if recorded_id and run_id != recorded_id:
    now = f"run {run_id}" if run_id else "no run that names itself"
    raise RunError(f"this prior was trained on codes of VQ-VAE run {recorded_id} (step {step}) "
                   f"in {vqvae_workdir}, which now holds {now}: {retrain}")
  if checksum is not _UNCHECKED and recorded_checksum and checksum != recorded_checksum:
    raise RunError(f"this prior was trained on codes of VQ-VAE run {recorded_id or '?'} (step "
                   f"{step}) in {vqvae_workdir}, whose checkpoint of step {step} is no longer "
                   f"the same (its checksum differs): {retrain}")


def smallest_dtype(num_codes: int):
  for dtype in (np.uint8, np.uint16, np.uint32):
    if num_codes - 1 <= np.iinfo(dtype).max:
      return dtype
  raise ValueError(f"K={num_codes} codes do not fit in 32 bits")


def save(run, batch_size: int = 500) -> dict:
  """Encodes every split of a VQ-VAE run's dataset into RUN_WORKDIR/codes/; returns the metadata.

  Args:
    run: a trained VQ-VAE run (`jaxvq.load_run`).
  """
  exp, state, vqvae_workdir = run.experiment, run.state, run.workdir
  model = run.model
  if not hasattr(model, "encode_to_indices"):
    raise DatasetError(f"{vqvae_workdir} holds a {exp.config.model.name} run, not a VQ-VAE")
  if jax.process_count() > 1:
    raise DatasetError(f"codes are encoded by one process: run `python -m jaxvq encode "
                       f"--workdir={vqvae_workdir}` on one host before training the prior")
  key = jax.random.key(0)  # binarized data: one fixed draw
  encode = exp.jit_model(
      lambda model, inputs: model.encode_to_indices(exp.dataset.preprocess(inputs, key)))
  batch_size = sharding.round_up_to_devices(batch_size, exp.mesh)
  dtype = smallest_dtype(model.num_codes)
  tmp = files.fresh_temporary_dir(codes_dir(vqvae_workdir))
  for split, source in (("train", exp.dataset.train), ("test", exp.dataset.test)):
    chunks, labels = [], []
    for indices, mask in eval_batches(len(source), batch_size):
      codes = encode(state, sharding.shard_batch(source.inputs(indices), exp.mesh))
      real = int(mask.sum())
      chunks.append(np.asarray(jax.device_get(codes))[:real].astype(dtype))
      labels.append(source.labels(indices)[:real])
    np.savez(os.path.join(tmp, f"{split}.npz"), codes=np.concatenate(chunks),
             labels=np.concatenate(labels))
  metadata = {"num_codes": int(model.num_codes), "grid_shape": list(chunks[0].shape[1:]),
              "step": int(state.step), "run_id": run.run_id, "checksum": run.checksum,
              "dataset": exp.config.dataset,
              "image_shape": list(exp.dataset.image_shape),
              "num_classes": int(exp.dataset.num_classes)}
  with open(os.path.join(tmp, "metadata.json"), "w") as f:
    json.dump(metadata, f, indent=2)
  files.publish_dir(tmp, codes_dir(vqvae_workdir))
  return metadata


@dataclasses.dataclass
class CodeDataset:
  """Code grids of a VQ-VAE, served like an image dataset (inputs = [N, h, w] codes)."""
  name: str
  train: ArraySource
  test: ArraySource
  metadata: dict

  @property
  def image_shape(self):
    return tuple(self.metadata["grid_shape"])

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

  def pixel_variance(self) -> float:
    return 1.0  # not used by a prior


def load(vqvae_workdir: str) -> CodeDataset:
  """The codes of the VQ-VAE run in `vqvae_workdir`, as a prior's dataset."""
  metadata = read_metadata(vqvae_workdir)
  if metadata is None:
    raise DatasetError(f"no codes in {codes_dir(vqvae_workdir)}: run "
                       f"`python -m jaxvq encode --workdir={vqvae_workdir}`")
  splits = {}
  for split in ("train", "test"):
    with np.load(os.path.join(codes_dir(vqvae_workdir), f"{split}.npz")) as f:
      splits[split] = ArraySource(f["codes"], f["labels"])
  return CodeDataset(CODES_PREFIX + vqvae_workdir, splits["train"], splits["test"], metadata)
