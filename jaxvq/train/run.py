"""Trained runs, loaded from their workdirs: for encoding codes, sampling, evaluation, users."""
from __future__ import annotations

import dataclasses
import os
from typing import Callable, Optional

import ml_collections

from jaxvq.config import CODES_PREFIX
from jaxvq.data import codes, load_dataset
from jaxvq.errors import RunError
from jaxvq.models import model_class
from jaxvq.train import checkpoint
from jaxvq.train.checkpoint import Checkpointer
from jaxvq.train.experiment import Experiment, TrainState, setup
from jaxvq.train import workdir as workdir_lib
from jaxvq.train.workdir import load_config


@dataclasses.dataclass(frozen=True)
class Run:
  """A run restored from its workdir: its experiment (config, data, mesh, model definition)
  and its train state at one checkpoint."""
  workdir: str
  experiment: Experiment
  state: TrainState
  run_id: Optional[str] = None    # the workdir's run (None: a run of an earlier jaxvq)
  checksum: Optional[str] = None  # the checkpoint's stored checksum (None: it has none)

  @property
  def config(self) -> ml_collections.ConfigDict:
    return self.experiment.config

  @property
  def model(self):
    """The NNX model with the checkpoint's parameters (call its methods eagerly, or `jit`)."""
    return self.experiment.model(self.state)

  @property
  def step(self) -> int:
    return int(self.state.step)

  def jit(self, fn: Callable) -> Callable:
    """fn(model, *args), compiled once, as a function of *args alone (this run's state)."""
    compiled = self.experiment.jit_model(fn)
    return lambda *args: compiled(self.state, *args)


def load_data(config: ml_collections.ConfigDict):
  """The dataset a config names; a VQ-VAE run's codes are encoded first if it has none.

  Codes are made only when missing: a prior never switches codes behind the
  user's back (`jaxvq encode` refreshes them on purpose). A saved prior's config
  names the VQ-VAE run its codes came from: another run in that workdir is
  refused before anything is encoded.
  """
  if config.dataset.startswith(CODES_PREFIX):
    vqvae_workdir = codes.workdir_of(config.dataset)
    if config.model.get("vqvae_run_id"):
      codes.check_same_run(config.model, vqvae_workdir, workdir_lib.run_id(vqvae_workdir))
    if codes.read_metadata(vqvae_workdir) is None:
      encode_codes(vqvae_workdir)
  return load_dataset(config.dataset, image_size=config.image_size,
                      data_dir=config.data_dir or None, corrupt_images=config.corrupt_images)


def load_run(workdir: str, step: Optional[int] = None) -> Run:
  """The run trained in `workdir`, at the checkpoint of `step` (default: the latest).

  Args:
    workdir: a directory `train_and_evaluate` (or train.py) trained in.
    step: a saved checkpoint's step; None for the newest.

  Returns:
    A `Run`: `.config`, `.model` (the NNX model with the checkpoint's parameters),
    `.state`, `.step`, and `.jit(fn)` to compile fn(model, ...).
  """
  config = load_config(workdir)
  directory = os.path.join(workdir, "checkpoints")
  step = checkpoint.latest_step(directory) if step is None else step
  if step is None:
    raise RunError(f"{workdir} has no checkpoint yet: train it first (rerun its train.py command)")
  exp = setup(config, load_data(config))
  checkpointer = Checkpointer(directory, read_only=True)
  state = checkpointer.restore(step, exp.initial_state,
                               model_class(config.model.name).legacy_state_path)
  checkpointer.close()
  return Run(workdir, exp, state, workdir_lib.run_id(workdir),
             checkpoint.saved_checksum(directory, step))


def encode_codes(vqvae_workdir: str) -> dict:
  """Saves the code grids of every split of a VQ-VAE run under VQVAE_WORKDIR/codes/, for a prior.

  Args:
    vqvae_workdir: the workdir of a trained VQ-VAE; its latest checkpoint encodes.

  Returns:
    The codes' metadata: K, the grid shape [h, w], the checkpoint's step, the run id and
    the checkpoint's checksum, the dataset, the image shape and the number of classes.
    The files hold `codes` [N, h, w] and `labels` [N] per split.

  Raises:
    RunError when the workdir holds no VQ-VAE run, or is in use by a training.
  """
  name = load_config(vqvae_workdir).model.name
  if name != "vqvae":
    raise RunError(f"{vqvae_workdir} holds a run of model {name!r}, not a VQ-VAE: codes come "
                   f"from a VQ-VAE's workdir")
  workdir_lib.check_path(vqvae_workdir)
  with workdir_lib.lock(vqvae_workdir):   # not while a training writes its checkpoints
    return codes.save(load_run(vqvae_workdir))
