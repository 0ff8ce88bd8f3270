"""Orbax checkpoints of the whole train state, one directory per step, each with its checksum.

  checkpoints/<step>/              Orbax's checkpoint of the train state
  checkpoints/<step>.sha256.json   the SHA-256 of that state's leaves
  checkpoints/damaged.<step>.<t>   a damaged checkpoint a resumed run moved aside

The checksum is written before Orbax starts saving (it is of the state passed
in), so no crash can leave a complete checkpoint without one; a checksum whose
checkpoint never completed names no listed step and is removed at the next
save. A step without a checksum file is accepted unverified only when it is
older than every step that has one: such checkpoints come from a jaxvq that
wrote no checksums (and resumed with this one). Restoring checks the restored
state against the checksum, so bytes changed on disk are never used.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from typing import Optional

import jax
import numpy as np
import orbax.checkpoint as ocp
from etils import epath

from jaxvq import compat
from jaxvq.errors import CheckpointDamaged, RunError
from jaxvq.runtime import distributed, files

CHECKSUM_SUFFIX = ".sha256.json"
DAMAGED_PREFIX = "damaged."


def _checksum_path(directory: str, step: int) -> str:
  return os.path.join(directory, f"{step}{CHECKSUM_SUFFIX}")


def saved_checksum(directory: str, step: int) -> Optional[str]:
  """The stored SHA-256 (hex) of the train state saved at `step` in `directory`.

  Args:
    directory: a checkpoints directory (WORKDIR/checkpoints).
    step: a saved checkpoint's step.

  Returns:
    The checksum `state_checksum` gave the state when it was saved; None if the
    step has none (a checkpoint of a jaxvq that wrote no checksums) or its file
    cannot be read.
  """
  try:
    with open(_checksum_path(directory, step)) as f:
      checksum = json.load(f).get("sha256")
  except (OSError, ValueError, AttributeError):
    return None
  return checksum if isinstance(checksum, str) else None


def _host_copy(leaf) -> np.ndarray:
  """A leaf's value on this host: of a replicated array, this process's first copy."""
  if isinstance(leaf, jax.Array):
    if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
      leaf = jax.random.key_data(leaf)
    if not leaf.is_fully_addressable and leaf.is_fully_replicated:
      leaf = leaf.addressable_data(0)
  return np.asarray(jax.device_get(leaf))


def state_checksum(state) -> str:
  """The SHA-256 (hex) of a pytree's leaves: each one's dtype, shape and bytes, in tree order."""
  digest = hashlib.sha256()
  for leaf in jax.tree.leaves(state):
    array = np.ascontiguousarray(_host_copy(leaf))
    digest.update(f"{array.dtype.str}{array.shape};".encode())
    digest.update(array.tobytes())
  return digest.hexdigest()


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


# Files every complete checkpoint has (Orbax restores without _CHECKPOINT_METADATA, but its
# absence means the directory was changed after Orbax finished it).
_REQUIRED_FILES = ("_CHECKPOINT_METADATA", os.path.join("default", "_METADATA"))


def _reason(error: BaseException) -> str:
  """An Orbax or TensorStore error as a short reason for a one-line message."""
  if isinstance(error, FileNotFoundError) and error.filename:
    return f"{error.filename} is missing"
  text = " ".join(str(error).split()) or type(error).__name__
  return f"it cannot be read: {text[:160]}{'...' if len(text) > 160 else ''}"


class Checkpointer:
  """Saves and restores a train-state pytree under `directory`/<step>, each with its checksum.

  Orbax writes each checkpoint to a temporary directory and renames it when
  complete, so `latest_step` only ever sees finished checkpoints. The writer
  (training) deletes the temporary directories a killed run left behind, and
  moves damaged checkpoints aside when it resumes before them; readers
  (`read_only`, e.g. sampling while training goes on) create, move and delete
  nothing (they never save).
  """

  def __init__(self, directory: str, max_to_keep: int = 2, read_only: bool = False):
    self.directory = directory
    self.read_only = read_only
    self.manager = ocp.CheckpointManager(
        os.path.abspath(directory),
        options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=not read_only,
                                             cleanup_tmp_directories=not read_only))

  def latest_step(self) -> Optional[int]:
    return self.manager.latest_step()

  def save(self, step: int, state) -> None:
    """Writes `state`'s checksum, then starts Orbax saving it (in the background) as `step`.

    Raises:
      DiskFull when the disk fills; the checkpoints saved before are intact.
    """
    try:
      self.manager.wait_until_finished()
      self._remove_orphan_checksums()
      if not self.manager.should_save(step):  # Orbax saves each step once, in increasing order
        return
      checksum = state_checksum(state)
      if distributed.is_main_process():
        files.write_atomically(_checksum_path(self.directory, step),
                               json.dumps({"step": step, "sha256": checksum}) + "\n")
      self.manager.save(step, args=ocp.args.StandardSave(state))
    except Exception as e:  # pylint: disable=broad-except
      files.raise_if_disk_full(e, self.directory)
      raise

  def _remove_orphan_checksums(self) -> None:
    """Deletes the checksums of steps Orbax no longer lists (removed by max_to_keep, or never
    completed); call when no save is in progress."""
    if self.read_only or not distributed.is_main_process() or not os.path.isdir(self.directory):
      return
    steps = set(self.manager.all_steps())
    for name in os.listdir(self.directory):
      step = name[:-len(CHECKSUM_SUFFIX)] if name.endswith(CHECKSUM_SUFFIX) else ""
      if step.isdigit() and int(step) not in steps:
        try:
          os.remove(os.path.join(self.directory, name))
        except FileNotFoundError:
          pass

  def _expected_checksum(self, step: int) -> Optional[str]:
    """The checksum `step`'s state must have; None for a checkpoint of a jaxvq that wrote none.

    Raises:
      CheckpointDamaged when the checksum file is missing but newer checkpoints have one.
    """
    checksum = saved_checksum(self.directory, step)
    if checksum is None:
      verified = [s for s in self.manager.all_steps() if saved_checksum(self.directory, s)]
      if verified and step > min(verified):
        raise CheckpointDamaged(step, self.directory,
                                f"its checksum file {_checksum_path(self.directory, step)} is "
                                f"missing or unreadable")
    return checksum

  def _fits(self, step: int, like) -> Optional[bool]:
    """Whether the checkpoint's own metadata lists `like`'s leaves with their shapes and dtypes;
    None if the metadata cannot be read."""
    try:
      metadata = ocp.PyTreeCheckpointHandler().metadata(
          epath.Path(os.path.abspath(self.directory)) / str(step) / "default")
      saved = {_names(path): (tuple(m.shape), np.dtype(m.dtype))
               for path, m in jax.tree_util.tree_flatten_with_path(metadata.tree)[0]}
    except Exception:  # pylint: disable=broad-except
      return None
    if not saved:
      return None
    return saved == {_names(path): (tuple(leaf.shape), np.dtype(leaf.dtype))
                     for path, leaf in jax.tree_util.tree_flatten_with_path(like)[0]}

  def restore(self, step: int, like):
    """The state saved at `step`, with the structure, dtypes and shardings of `like`.

    A checkpoint of jaxvq 0.1, with variables elsewhere in the tree, is read through
    jaxvq/compat.py.

    Raises:
      CheckpointDamaged when the checkpoint cannot be read or its state does not match
      its checksum; RunError when it holds another architecture's state.
    """
    steps = self.manager.all_steps()
    if step not in steps:
      raise RunError(f"{self.directory} holds no complete checkpoint of step {step} (it holds "
                     f"{', '.join(map(str, sorted(steps))) or 'none'})")
    step_dir = os.path.join(self.directory, str(step))
    for name in _REQUIRED_FILES:
      if not os.path.exists(os.path.join(step_dir, name)):
        raise CheckpointDamaged(step, self.directory, f"{os.path.join(step_dir, name)} is missing")
    expected = self._expected_checksum(step)
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
    try:
      state = self.manager.restore(step, args=ocp.args.StandardRestore(abstract))
    except Exception as e:  # pylint: disable=broad-except
      if self._fits(step, like) is not False:  # the tree is `like`'s, so its files are damaged
        raise CheckpointDamaged(step, self.directory, _reason(e)) from e
      state = compat.restore_moved(
          lambda: self.manager.restore(step, args=ocp.args.StandardRestore()), like, _names)
      if state is None:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise RunError(f"the checkpoint of step {step} in {self.directory} does not fit this "
                       f"model ({reason[:200]}): it was written by another architecture or jaxvq "
                       f"version; train in a new --workdir, or delete {self.directory} to start "
                       f"over") from e
    if expected is not None and state_checksum(state) != expected:
      raise CheckpointDamaged(step, self.directory, "its data does not match its checksum")
    return state

  def restore_latest_intact(self, like) -> tuple:
    """The newest checkpoint that restores and matches its checksum, as (step, state).

    A damaged newer checkpoint is reported in one warning line on stderr. The writer
    moves it aside to `damaged.<step>.<time>` (Orbax saves a step only past the newest
    one, so training could not save it again); a reader leaves it where it is.

    Args:
      like: a state with the structure, dtypes and shardings to restore into.

    Returns:
      (step, state), or (None, None) when the directory holds no checkpoint.

    Raises:
      RunError naming the damaged steps when no checkpoint is intact, or when the
      checkpoints hold another architecture's state.
    """
    damaged = []
    for step in sorted(self.manager.all_steps(), reverse=True):
      try:
        state = self.restore(step, like)
      except CheckpointDamaged as e:
        damaged.append(e)
        continue
      if damaged:
        self._set_aside(damaged, f"using step {step}" if self.read_only
                        else f"resuming from step {step}")
      return step, state
    if damaged:  # left where they are: the user decides what to do with the workdir
      raise RunError(f"no checkpoint in {self.directory} is intact: "
                     + "; ".join(f"step {e.step} ({e.reason})" for e in damaged)
                     + "; train in a new --workdir, or rerun with --config.overwrite=True to "
                       "start over in this one")
    return None, None

  def _set_aside(self, damaged: list, outcome: str) -> None:
    """Warns about the damaged checkpoints in one line; the writer moves them aside."""
    moved = []
    if not self.read_only:
      if distributed.is_main_process():
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for e in damaged:
          aside = os.path.join(self.directory, f"{DAMAGED_PREFIX}{e.step}.{stamp}")
          os.replace(os.path.join(self.directory, str(e.step)), aside)
          if os.path.exists(_checksum_path(self.directory, e.step)):
            os.replace(_checksum_path(self.directory, e.step), aside + CHECKSUM_SUFFIX)
          moved.append(aside)
      distributed.barrier("jaxvq: damaged checkpoints moved aside")
      self.manager.reload()
    if distributed.is_main_process():
      what = "; ".join(f"the checkpoint of step {e.step} in {self.directory} is damaged "
                       f"({e.reason})" for e in damaged)
      aside = f" (moved aside to {', '.join(moved)})" if moved else ""
      print(f"warning: {what}{aside}; {outcome}", file=sys.stderr, flush=True)

  def wait(self) -> None:
    """Returns when the checkpoints being written are complete.

    Raises:
      DiskFull when the disk filled while writing them.
    """
    try:
      self.manager.wait_until_finished()
    except Exception as e:  # pylint: disable=broad-except
      files.raise_if_disk_full(e, self.directory)
      raise

  def close(self) -> None:
    try:
      self.wait()
      self._remove_orphan_checksums()
    finally:
      self.manager.close()
