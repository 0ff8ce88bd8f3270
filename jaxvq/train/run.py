"""Trained runs, loaded from their workdirs (for encoding codes, sampling, evaluation, users),
and the data a run trains on."""
from __future__ import annotations

import dataclasses
import os
from typing import Callable, Optional

import ml_collections

from jaxvq.errors import RunError
from jaxvq.tokens import codes, provenance
from jaxvq.train import checkpoint
from jaxvq.train.experiment import Experiment, TrainState, image_dataset, restore
from jaxvq.train import workdir as workdir_lib


@dataclasses.dataclass(frozen=True)
class Run:
  """A run restored from its workdir: its experiment (config, data, mesh, model definition)
  and its train state at one checkpoint."""
  workdir: str
  experiment: Experiment
  state: TrainState
  run_id: Optional[str] = None    # the workdir's run (None: a jaxvq 0.1 run, which named none)
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


def load_data(config: ml_collections.ConfigDict, prior_workdir: Optional[str] = None):
  """The dataset a config names: images, or a tokenizer run's codes (`codes:DIR`).

  With `prior_workdir` (a prior's), codes of another tokenizer run or checkpoint than the
  one the prior recorded are refused before they are read.
  """
  if not codes.is_codes(config.dataset):
    return image_dataset(config)
  if prior_workdir is not None:
    problem = tokenizer_mismatch(prior_workdir, codes.workdir_of(config.dataset))
    if problem:
      raise RunError(problem)
  return codes.load(codes.workdir_of(config.dataset))


def tokenizer_mismatch(prior_workdir: str, tokenizer_workdir: str,
                       checksum: Optional[str] = None) -> Optional[str]:
  """Why the tokenizer's workdir no longer holds the run and codes the prior in
  `prior_workdir` learned (jaxvq.tokens.provenance), or None: nothing to refuse."""
  return provenance.mismatch(provenance.read_record(prior_workdir),
                             workdir_lib.run_id(tokenizer_workdir),
                             codes.read_metadata(tokenizer_workdir), checksum)


def load_run(workdir: str, step: Optional[int] = None) -> Run:
  """The run trained in `workdir`, at the checkpoint of `step` (default: the latest).

  Args:
    workdir: a directory `train_and_evaluate` (or train.py) trained in.
    step: a saved checkpoint's step; None for the newest.

  Returns:
    A `Run`: `.config`, `.model` (the NNX model with the checkpoint's parameters),
    `.state`, `.step`, and `.jit(fn)` to compile fn(model, ...).
  """
  exp, state, step = restore(workdir, lambda config: load_data(config, workdir), step)
  return Run(workdir, exp, state, workdir_lib.run_id(workdir),
             checkpoint.saved_checksum(os.path.join(workdir, "checkpoints"), step))
