"""A VQ-VAE's code grids on disk, and the dataset a prior trains on (`codes:VQVAE_WORKDIR`).

VQVAE_DIR/codes/ holds train.npz and test.npz (arrays `codes` [N, h, w] in the
smallest unsigned integer type that fits K, and `labels` [N]) and
metadata.json (K, the grid shape, the checkpoint step, the dataset, the image
shape, the number of classes). It is written to a temporary folder and renamed
when complete, so a crash never leaves half a set of codes behind.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os

import jax
import jax.numpy as jnp
import numpy as np

from jaxvq.config import CODES_PREFIX
from jaxvq.data.batches import eval_batches
from jaxvq.data.sources import ArraySource
from jaxvq.errors import DatasetError
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
              "step": int(state.step), "dataset": exp.config.dataset,
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
