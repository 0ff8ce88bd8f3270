"""Orbax checkpoints of the whole train state, one directory per step."""
from __future__ import annotations

import os
from typing import Optional

import jax
import orbax.checkpoint as ocp

from jaxvq.errors import RunError


def saved_steps(directory: str) -> list:
  """The steps of the complete checkpoints in `directory`, in order (creates nothing)."""
  for attempt in range(3):
    if not os.path.isdir(directory):
      return []
    try:
      checkpointer = Checkpointer(directory, read_only=True)
      steps = sorted(checkpointer.manager.all_steps())
      checkpointer.close()
      return steps
    except FileNotFoundError:  # a running training deleted an old step while we listed it
      if attempt == 2:
        raise


def latest_step(directory: str) -> Optional[int]:
  """The newest complete checkpoint's step in `directory`, None if none (creates nothing)."""
  steps = saved_steps(directory)
  return steps[-1] if steps else None


class Checkpointer:
  """Saves and restores a train-state pytree under `directory`/<step>.

  Orbax writes each checkpoint to a temporary directory and renames it when
  complete, so `latest_step` only ever sees finished checkpoints. The writer
  (training) deletes the temporary directories a killed run left behind;
  readers (`read_only`, e.g. sampling while training goes on) create and
  delete nothing (they never save).
  """

  def __init__(self, directory: str, max_to_keep: int = 2, read_only: bool = False):
    self.directory = directory
    self.manager = ocp.CheckpointManager(
        os.path.abspath(directory),
        options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=not read_only,
                                             cleanup_tmp_directories=not read_only))

  def latest_step(self) -> Optional[int]:
    return self.manager.latest_step()

  def save(self, step: int, state) -> None:
    self.manager.save(step, args=ocp.args.StandardSave(state))

  def restore(self, step: int, like):
    """The state saved at `step`, with the structure, dtypes and shardings of `like`."""
    steps = self.manager.all_steps()
    if step not in steps:
      raise RunError(f"{self.directory} holds no complete checkpoint of step {step} (it holds "
                     f"{', '.join(map(str, sorted(steps))) or 'none'})")
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
    try:
      return self.manager.restore(step, args=ocp.args.StandardRestore(abstract))
    except (ValueError, KeyError, TypeError) as e:
      reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
      raise RunError(f"the checkpoint of step {step} in {self.directory} does not fit this model "
                     f"({reason[:200]}): it was written by another architecture or jaxvq version; "
                     f"train in a new --workdir, or delete {self.directory} to start over") from e

  def wait(self) -> None:
    """Returns when the checkpoints being written are complete."""
    self.manager.wait_until_finished()

  def close(self) -> None:
    self.manager.wait_until_finished()
    self.manager.close()
