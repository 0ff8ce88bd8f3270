"""Trained runs on either side of the link: a tokenizer run's codes encoded for a prior
(`encode_codes`, the `jaxvq encode` command), and a prior run loaded with the tokenizer run
and checkpoint whose codes it learned (`load_prior`, checked against its record).

It loads trained runs (jaxvq.train), so it sits above the training loop; the rest of
jaxvq.tokens sits below it.
"""
from __future__ import annotations

import os
from typing import Callable

import jax
import numpy as np

from jaxvq.data.batches import eval_batches
from jaxvq import registry
from jaxvq.errors import DatasetError, RunError
from jaxvq.priors.base import Prior
from jaxvq.runtime import sharding
from jaxvq.tokens import codes as codes_lib
from jaxvq.train import checkpoint
from jaxvq.train import workdir as workdir_lib
from jaxvq.train.run import Run, load_run, tokenizer_mismatch

_TOKENIZER_METHODS = ("encode_to_indices", "decode_from_indices")   # jaxvq.tokens.Tokenizer


def encode_codes(tokenizer_workdir: str, batch_size: int = 500) -> dict:
  """Saves the code grids of every split of a tokenizer run under TOKENIZER_DIR/codes/.

  Args:
    tokenizer_workdir: the workdir of a trained tokenizer (a VQ-VAE); its latest checkpoint
      encodes.
    batch_size: images per compiled batch.

  Returns:
    The codes' metadata: K, the grid shape [h, w] (or [h, w, Q]), the checkpoint's step,
    the run id and the checkpoint's checksum, the dataset, the image shape, the number of
    classes, each file's SHA-256. The files hold `codes` [N, h, w] and `labels` [N] per
    split.

  Raises:
    RunError when the workdir holds no tokenizer run, or is in use by a training.
  """
  name = workdir_lib.load_config(tokenizer_workdir).model.name
  if not all(hasattr(registry.model_class(name), method) for method in _TOKENIZER_METHODS):
    raise RunError(f"{tokenizer_workdir} holds a run of model {name!r}, not a VQ-VAE: codes "
                   f"come from a tokenizer's workdir")
  workdir_lib.check_path(tokenizer_workdir)
  if jax.process_count() > 1:
    raise DatasetError(f"codes are encoded by one process: encode them on one host before "
                       f"training the prior ({tokenizer_workdir})")
  with workdir_lib.lock(tokenizer_workdir):   # not while a training writes its checkpoints
    run = load_run(tokenizer_workdir)
    return codes_lib.write(tokenizer_workdir, _encode_splits(run, batch_size), {
        "num_codes": int(run.model.num_codes), "step": run.step, "run_id": run.run_id,
        "checksum": run.checksum, "dataset": run.config.dataset,
        "image_shape": list(run.experiment.dataset.image_shape),
        "num_classes": int(run.experiment.dataset.num_classes)})


def make_encoder(exp) -> Callable:
  """fn(state, inputs [B, H, W, C] uint8) -> codes [B, h, w(, Q)] int32: a tokenizer's
  encoder, compiled, with its dataset's preprocessing (binarized data: one fixed draw)."""
  return exp.jit_model(lambda model, inputs: model.encode_to_indices(
      exp.dataset.preprocess(inputs, jax.random.key(0))))


def _encode_splits(run: Run, batch_size: int) -> dict:
  """split -> (codes [N, h, w(, Q)], labels [N]) of the run's dataset."""
  exp = run.experiment
  encoder = make_encoder(exp)
  encode = lambda inputs: encoder(run.state, inputs)
  batch_size = sharding.round_up_to_devices(batch_size, exp.mesh)
  splits = {}
  for split, source in (("train", exp.dataset.train), ("test", exp.dataset.test)):
    chunks, labels = [], []
    for indices, mask in eval_batches(len(source), batch_size):
      grids = encode(sharding.shard_batch(source.inputs(indices), exp.mesh))
      real = int(mask.sum())
      chunks.append(np.asarray(jax.device_get(grids))[:real])
      labels.append(source.labels(indices)[:real])
    splits[split] = (np.concatenate(chunks), np.concatenate(labels))
  return splits


def load_prior(prior_workdir: str) -> Run:
  """The prior run trained in `prior_workdir`.

  Returns:
    Its `Run` (`jaxvq.load_run`), checked to be a prior's (`jaxvq.Prior`) whose codes are still
    those its tokenizer's workdir holds.
  """
  run = load_run(prior_workdir)
  if not isinstance(run.model, Prior):
    raise RunError(f"{prior_workdir} holds a {run.config.model.name} run, not a prior over "
                   f"codes")
  return run


def load_tokenizer_of(prior_run: Run) -> Run:
  """The tokenizer a prior learned the codes of.

  Returns:
    The tokenizer's `Run` at the checkpoint whose codes `prior_run` learned, checked to be
    that run and checkpoint still (its checksum).
  """
  tokenizer_dir = codes_lib.workdir_of(prior_run.config.dataset)
  step = prior_run.experiment.dataset.metadata["step"]
  directory = os.path.join(tokenizer_dir, "checkpoints")
  if step not in checkpoint.saved_steps(directory):
    raise RunError(f"the VQ-VAE checkpoint of step {step}, whose codes the prior learned, is no "
                   f"longer in {directory}: re-encode with `python -m jaxvq encode "
                   f"--workdir={tokenizer_dir}` and train a new prior on those codes")
  problem = tokenizer_mismatch(prior_run.workdir, tokenizer_dir,
                               checkpoint.saved_checksum(directory, step))
  if problem:
    raise RunError(problem)
  return load_run(tokenizer_dir, step=step)
