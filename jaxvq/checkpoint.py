"""Orbax checkpoints of the whole train state, one directory per step."""
from __future__ import annotations

import os
from typing import Optional

import jax
import orbax.checkpoint as ocp


def latest_step(directory: str) -> Optional[int]:
  """The newest complete checkpoint's step in `directory`, None if none (creates nothing)."""
  if not os.path.isdir(directory):
    return None
  checkpointer = Checkpointer(directory)
  step = checkpointer.latest_step()
  checkpointer.close()
  return step


class Checkpointer:
  """Saves and restores a train-state pytree under `directory`/<step>.

  Orbax writes each checkpoint to a temporary directory and renames it when
  complete, so `latest_step` only ever sees finished checkpoints.
  """

  def __init__(self, directory: str, max_to_keep: int = 2):
    self.manager = ocp.CheckpointManager(
        os.path.abspath(directory),
        options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True))

  def latest_step(self) -> Optional[int]:
    return self.manager.latest_step()

  def save(self, step: int, state) -> None:
    self.manager.save(step, args=ocp.args.StandardSave(state))

  def restore(self, step: int, like):
    """The state saved at `step`, with the structure, dtypes and shardings of `like`."""
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
    return self.manager.restore(step, args=ocp.args.StandardRestore(abstract))

  def close(self) -> None:
    self.manager.wait_until_finished()
    self.manager.close()
