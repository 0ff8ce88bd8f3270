"""Orbax checkpoints of the whole train state, one directory per step."""
from __future__ import annotations

import os
from typing import Optional

from typing import Callable

import jax
import numpy as np
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


def _names(path) -> tuple:
  """A pytree key path as plain names: ('params', 'encoder', 'conv', 'kernel', 'value')."""
  return tuple(str(getattr(k, "name", getattr(k, "key", getattr(k, "idx", k)))) for k in path)


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

  def restore(self, step: int, like, legacy_path: Callable | None = None):
    """The state saved at `step`, with the structure, dtypes and shardings of `like`.

    A checkpoint an earlier jaxvq wrote with its variables elsewhere in the tree is
    read through `legacy_path`, which maps each saved leaf's path (a tuple of names) to
    where `like` has it.
    """
    steps = self.manager.all_steps()
    if step not in steps:
      raise RunError(f"{self.directory} holds no complete checkpoint of step {step} (it holds "
                     f"{', '.join(map(str, sorted(steps))) or 'none'})")
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
    try:
      return self.manager.restore(step, args=ocp.args.StandardRestore(abstract))
    except (ValueError, KeyError, TypeError) as e:
      restored = self._restore_moved(step, like, legacy_path) if legacy_path else None
      if restored is not None:
        return restored
      reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
      raise RunError(f"the checkpoint of step {step} in {self.directory} does not fit this model "
                     f"({reason[:200]}): it was written by another architecture or jaxvq version; "
                     f"train in a new --workdir, or delete {self.directory} to start over") from e

  def _restore_moved(self, step: int, like, legacy_path: Callable):
    """The saved tree read as it is, each leaf moved by `legacy_path`; None if that does not
    give `like`'s leaves, shapes and dtypes exactly."""
    try:
      saved = self.manager.restore(step, args=ocp.args.StandardRestore())
    except (ValueError, KeyError, TypeError):
      return None
    moved = {legacy_path(_names(path)): leaf
             for path, leaf in jax.tree_util.tree_flatten_with_path(saved)[0]}
    wanted, treedef = jax.tree_util.tree_flatten_with_path(like)
    leaves = []
    for path, target in wanted:
      leaf = moved.pop(_names(path), None)
      if leaf is None or np.shape(leaf) != target.shape or np.dtype(leaf.dtype) != target.dtype:
        return None
      leaves.append(jax.device_put(leaf, target.sharding))
    return None if moved else jax.tree_util.tree_unflatten(treedef, leaves)

  def wait(self) -> None:
    """Returns when the checkpoints being written are complete."""
    self.manager.wait_until_finished()

  def close(self) -> None:
    self.manager.wait_until_finished()
    self.manager.close()
