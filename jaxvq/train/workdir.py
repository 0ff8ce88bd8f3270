"""A run's workdir: what jaxvq wrote there, who is using it, and which config may train in it.

  .jaxvq             the record: the run id, the jaxvq version, and every name jaxvq writes here
  .lock              held (fcntl.flock) by the process training in, or encoding codes into, it
  config.json        the run's configuration (the resolved config: shared keys + its model's)
  metrics.jsonl      one JSON row per log/eval: step, split, losses, ...
  checkpoints/<step> Orbax checkpoints of the train state
  images/            reconstructions_<step>.png, samples_<step>.png, code_usage_<step>.png
  codes/             a tokenizer's code grids (jaxvq/tokens/codes.py)
  tokenizer.json     a prior's record of the tokenizer run its codes came from
                     (jaxvq/tokens/provenance.py)
  events.out.tfevents.*  TensorBoard

A workdir is the user's folder lent to jaxvq: it is claimed only when empty,
new, or already jaxvq's (a record, or a config.json of jaxvq 0.1: jaxvq/compat.py), and
jaxvq deletes only the names its record lists, never a file it did not write.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shutil
import socket
import time
import uuid
from typing import Iterator, Optional

import ml_collections

from jaxvq import compat
from jaxvq import config as config_lib
from jaxvq.errors import RunError
from jaxvq.runtime import distributed, files
from jaxvq.tokens import codes, provenance
from jaxvq.train import checkpoint
from jaxvq.version import __version__

RECORD, LOCK = ".jaxvq", ".lock"
EVENTS_PREFIX = "events.out.tfevents."
# Every top-level name a run writes (temporary ones included), recorded when a workdir is
# claimed so that overwrite removes these and nothing else.
RUN_NAMES = ("checkpoints", "metrics.jsonl", "images", codes.CODES_DIR, f"{codes.CODES_DIR}.tmp",
             provenance.RECORD_FILE, f"{provenance.RECORD_FILE}.tmp", "config.json",
             "config.json.tmp", ".overwritten")
# Names that are jaxvq's even without a record: the record's and the lock's own files.
_OWN_NAMES = (RECORD, f"{RECORD}.tmp", LOCK)


# ----------------------------------------------------------------------------- config.json

def saved_config(workdir: str) -> dict:
  """The workdir's config.json as written (by any jaxvq version)."""
  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    raise RunError(f"{workdir} holds no run (no config.json): train one with "
                   f"`python train.py --config=configs/NAME.py --workdir={workdir}`")
  try:
    with open(path) as f:
      return json.load(f)
  except json.JSONDecodeError as e:
    raise RunError(f"{path} is not valid JSON ({e}): it was not written by jaxvq, or was edited "
                   f"by hand") from e


def load_config(workdir: str) -> ml_collections.ConfigDict:
  """The workdir's run config, in today's form (config.migrate)."""
  return ml_collections.ConfigDict(config_lib.migrate(saved_config(workdir)))


def write_config(config: ml_collections.ConfigDict, workdir: str) -> None:
  if distributed.is_main_process():
    files.write_atomically(os.path.join(workdir, "config.json"),
                           config.to_json_best_effort(indent=2, sort_keys=True))


# ----------------------------------------------------------------------------- the record

def read_record(workdir: str) -> Optional[dict]:
  """The workdir's record (run_id, jaxvq_version, files), or None if jaxvq never claimed it."""
  path = os.path.join(workdir, RECORD)
  try:
    with open(path) as f:
      record = json.load(f)
  except FileNotFoundError:
    return None
  except (OSError, json.JSONDecodeError) as e:
    raise RunError(f"{path} is not jaxvq's record of {workdir} ({e}): it was edited by hand; "
                   f"give a new --workdir") from e
  if not isinstance(record, dict) or not isinstance(record.get("files"), list):
    raise RunError(f"{path} is not jaxvq's record of {workdir}: it was edited by hand; give a "
                   f"new --workdir")
  return record


def run_id(workdir: str) -> Optional[str]:
  """The id of the run trained in `workdir` (a new one at each fresh start or overwrite); None
  for a workdir of jaxvq 0.1 that no run has claimed since."""
  record = read_record(workdir)
  return record.get("run_id") if record else None


def _write_record(workdir: str, record: dict) -> None:
  record = {**record, "files": sorted(set(record["files"]))}
  _writing(workdir, lambda: files.write_atomically(os.path.join(workdir, RECORD),
                                                   json.dumps(record, indent=2) + "\n"))


def _new_record(names) -> dict:
  return {"run_id": uuid.uuid4().hex, "jaxvq_version": __version__,
          "files": sorted(set(RUN_NAMES) | set(names))}


def record_new_files(workdir: str, before: set) -> None:
  """Adds to the record the TensorBoard event files that appeared since `before` (the names
  the workdir held when it was claimed): their names are chosen by tensorboardX."""
  if not distributed.is_main_process():
    return
  record = read_record(workdir)
  if record is None:
    return
  new = [n for n in os.listdir(workdir) if n.startswith(EVENTS_PREFIX) and n not in before]
  if new:
    record["files"] = record["files"] + new
    _write_record(workdir, record)


# ----------------------------------------------------------------------------- paths

def _writing(path: str, write):
  """write(), with an OSError (read-only, disk full, ...) as one line naming `path`."""
  try:
    return write()
  except OSError as e:
    cause = e.strerror or str(e)
    if e.errno == errno.ENOSPC:
      cause = "no space left on device"
    raise RunError(f"cannot write in {path}: {cause.lower()}; free space or fix its "
                   f"permissions, or give another --workdir") from e


def check_path(workdir: str) -> None:
  """Refuses, before anything is written, a workdir path that cannot hold a run: empty, a
  file, under a file, or in a directory this process may not write."""
  if not workdir or not workdir.strip():
    raise RunError("--workdir is empty: give the directory for the run's files, e.g. "
                   "--workdir=workdirs/my_run")
  if os.path.exists(workdir) and not os.path.isdir(workdir):
    raise RunError(f"--workdir={workdir} is a file, not a directory: give a directory for the "
                   f"run's files")
  existing = os.path.abspath(workdir)
  while not os.path.exists(existing):
    existing = os.path.dirname(existing)
  if not os.path.isdir(existing):
    raise RunError(f"--workdir={workdir} lies under {existing}, which is a file, not a "
                   f"directory: give another --workdir")
  if not os.access(existing, os.W_OK | os.X_OK):
    what = "the workdir" if existing == os.path.abspath(workdir) else f"its parent {existing}"
    raise RunError(f"cannot write in {workdir}: {what} is read-only for this user; fix its "
                   f"permissions, or give another --workdir")


def _inside(path: str, folder: str) -> bool:
  path, folder = os.path.realpath(path), os.path.realpath(folder)
  return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def check_dataset(dataset: str, workdir: str) -> None:
  """Refuses a dataset inside the workdir (overwrite and outputs would touch it), a workdir
  inside an image folder (its images would become training data), and a prior trained in its
  VQ-VAE's own workdir."""
  for prefix in ("folder:", "npz:"):
    if dataset.startswith(prefix):
      path = dataset[len(prefix):]
      if path and _inside(path, workdir):
        raise RunError(f"the dataset {path} lies inside the workdir {workdir}: keep data and "
                       f"runs apart (move the data, or give another --workdir)")
      if prefix == "folder:" and path and _inside(workdir, path):
        raise RunError(f"the workdir {workdir} lies inside the image folder {path}: jaxvq's "
                       f"images would become training data; give a --workdir outside it")
  if codes.is_codes(dataset):
    vqvae_workdir = codes.workdir_of(dataset)
    if vqvae_workdir and _inside(workdir, vqvae_workdir) and _inside(vqvae_workdir, workdir):
      raise RunError(f"a prior trains in a workdir of its own, not in that of its VQ-VAE "
                     f"({workdir}): give another --workdir")


# ----------------------------------------------------------------------------- the lock

@contextlib.contextmanager
def lock(workdir: str) -> Iterator[None]:
  """Holds WORKDIR/.lock (fcntl.flock) for the block: a second trainer, or an encoder, of the
  same workdir is refused at once. The kernel releases it when the process ends, crash or not.
  Only process 0 locks: the other processes of a run share its workdir."""
  if not distributed.is_main_process():
    yield
    return
  path = os.path.join(workdir, LOCK)
  fd = _writing(workdir, lambda: os.open(path, os.O_RDWR | os.O_CREAT, 0o644))
  try:
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      holder = os.pread(fd, 200, 0).decode(errors="replace").split()
      pid, host = (holder + ["?", "?"])[:2]
      raise RunError(f"{workdir} is in use by process {pid} on {host} (its lock {path}): wait "
                     f"for it to finish, or use another --workdir") from None
    def write_holder():
      os.ftruncate(fd, 0)
      os.pwrite(fd, f"{os.getpid()} {socket.gethostname()}\n".encode(), 0)
    _writing(workdir, write_holder)
    yield
  finally:
    os.close(fd)   # releases the lock


# ----------------------------------------------------------------------------- claiming

@contextlib.contextmanager
def claimed(config: ml_collections.ConfigDict, workdir: str,
            other_run: Optional[str] = None) -> Iterator[None]:
  """The workdir made this run's (`claim_workdir`) and locked for the block; the event files
  that appear meanwhile are added to its record.

  Nothing is written before the workdir is known to be jaxvq's, or empty, or new.
  `other_run` says why the run in the workdir is another one though its config matches (a
  prior whose codes changed): it is then refused, or with config.overwrite replaced.
  """
  check_path(workdir)
  check_not_foreign(workdir)
  _check_same_run(config, workdir, other_run)
  _writing(workdir, lambda: os.makedirs(workdir, exist_ok=True))   # every process's host
  with lock(workdir):
    before = set(os.listdir(workdir))
    claim_workdir(config, workdir, other_run)
    try:
      yield
    finally:
      record_new_files(workdir, before)


def check_not_foreign(workdir: str) -> None:
  """Refuses a directory that holds files and no sign of jaxvq (a record, or the config.json
  of jaxvq 0.1): it is the user's, and jaxvq writes nothing into it."""
  if not os.path.isdir(workdir) or read_record(workdir) is not None or _unrecorded_run(workdir):
    return
  foreign = sorted(n for n in os.listdir(workdir) if n not in _OWN_NAMES)
  if foreign:
    shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
    raise RunError(f"{workdir} holds files jaxvq did not write: {shown}; give an empty or new "
                   f"--workdir")


def _unrecorded_run(workdir: str) -> bool:
  """Whether the workdir holds a config.json of a jaxvq run written before records."""
  try:
    saved = saved_config(workdir)
  except RunError:
    return False
  return compat.is_unrecorded_run(saved)


def _unrecorded_run_files(workdir: str) -> list:
  return compat.unrecorded_run_files(workdir, RUN_NAMES, EVENTS_PREFIX)


def claim_workdir(config: ml_collections.ConfigDict, workdir: str,
                  other_run: Optional[str] = None) -> None:
  """Makes `workdir` this run's: checks that it holds no run or one of the same config (with
  config.overwrite: deletes that run's files instead), and records what jaxvq writes there.
  Called by `claimed`, with the workdir's lock held and its path and files already checked.

  Raises:
    RunError for a workdir holding a run of another config (unless config.overwrite), or
    one it cannot write in.
  """
  record = read_record(workdir) if os.path.isdir(workdir) else None
  if not os.path.exists(os.path.join(workdir, "config.json")):
    if checkpoint.latest_step(os.path.join(workdir, "checkpoints")) is not None:
      raise RunError(f"{workdir} holds checkpoints but no config.json, so nothing says which "
                     f"run they are: use a new --workdir, or delete {workdir}/checkpoints")
    _start(workdir, record)
    return
  if _check_same_run(config, workdir, other_run):
    _start(workdir, record)
    return
  distributed.barrier("jaxvq: every process has read the old config")
  if distributed.is_main_process():
    _overwrite(workdir, record)


def _check_same_run(config: ml_collections.ConfigDict, workdir: str,
                    other_run: Optional[str] = None) -> bool:
  """Whether the workdir holds no run or one of `config` (True), or one that config.overwrite
  lets it replace (False); refuses a run of another config (or `other_run`) otherwise."""
  if not os.path.exists(os.path.join(workdir, "config.json")):
    return True
  saved = saved_config(workdir)
  differences = config_lib.differences(saved, config)
  if not differences and not other_run:
    return True
  if not differences:   # a prior whose codes changed
    if not config.overwrite:
      raise RunError(f"{other_run}; or add --config.overwrite=True to start over in {workdir}")
    return False
  if not config.overwrite:
    name = saved.get("model", {}).get("name")
    what = ("run of a different config" if name == config.model.name else
            f"run of model {name!r}, not {config.model.name!r}")
    shown = "; ".join(differences[:4]) + ("; ..." if len(differences) > 4 else "")
    raise RunError(f"{workdir} holds a {what} ({shown}): use a new --workdir, or add "
                   f"--config.overwrite=True to delete that run and start over")
  return False


def _start(workdir: str, record: Optional[dict]) -> None:
  """Creates the workdir and its record if missing (a workdir of jaxvq 0.1 gets one
  listing its known run files)."""
  if not distributed.is_main_process() or record is not None:
    return
  _writing(workdir, lambda: os.makedirs(workdir, exist_ok=True))
  _write_record(workdir, _new_record(_unrecorded_run_files(workdir)))


def _overwrite(workdir: str, record: Optional[dict]) -> None:
  """Deletes the names the record lists (the old run's files), under a new run id."""
  old = record["files"] if record else _unrecorded_run_files(workdir)
  new = _new_record(old)
  _write_record(workdir, new)   # first: a crash midway never leaves the old run's id
  # Each piece is first renamed away, the checkpoints first and config.json last, so that a
  # crash midway never leaves a checkpoint that a rerun would load.
  trash = os.path.join(workdir, ".overwritten")
  names = sorted(set(old) - {".overwritten"},
                 key=lambda n: (n == "config.json", n != "checkpoints", n))

  def move_away():
    os.makedirs(trash, exist_ok=True)
    for name in names:
      if os.path.lexists(os.path.join(workdir, name)):
        os.replace(os.path.join(workdir, name), os.path.join(trash, f"{name}.{time.time_ns()}"))
    shutil.rmtree(trash)

  _writing(workdir, move_away)
  _write_record(workdir, {**new, "files": list(RUN_NAMES)})
