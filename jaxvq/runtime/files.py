"""Files written whole or not at all: a reader (or a rerun after a crash) never sees half of one."""
from __future__ import annotations

import errno
import os
import shutil
from typing import Optional

from jaxvq.errors import DiskFull


def write_atomically(path: str, text: str) -> None:
  """Writes `text` to `path` through a temporary file renamed over it."""
  tmp = f"{path}.tmp"
  try:
    with open(tmp, "w") as f:
      f.write(text)
    os.replace(tmp, path)
  except OSError as e:
    if os.path.exists(tmp):  # e.g. the disk filled: leave no half-written file behind
      os.remove(tmp)
    raise_if_disk_full(e, path)
    raise


def fresh_temporary_dir(path: str) -> str:
  """An empty `path`.tmp to fill, then publish with `publish_dir` (a leftover one is cleared)."""
  tmp = f"{path}.tmp"
  shutil.rmtree(tmp, ignore_errors=True)
  os.makedirs(tmp)
  return tmp


def publish_dir(tmp: str, path: str) -> None:
  """Replaces `path` by the complete directory `tmp`."""
  shutil.rmtree(path, ignore_errors=True)
  os.replace(tmp, path)


def disk_full_cause(error: BaseException) -> Optional[BaseException]:
  """The error in `error`'s chain that says a disk is full (or a quota exceeded), if any."""
  seen = set()
  while error is not None and id(error) not in seen:
    seen.add(id(error))
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
      return error
    if "no space left on device" in str(error).lower():
      return error
    error = error.__cause__ or error.__context__
  return None


def as_disk_full(error: BaseException, path: str) -> Optional[DiskFull]:
  """A DiskFull naming the file (else `path`) when a full disk caused `error`; None otherwise."""
  cause = disk_full_cause(error)
  if cause is None:
    return None
  where = getattr(cause, "filename", None) or path
  return DiskFull(f"no space left on device while writing {where}: free space on that disk, or "
                  f"train in a --workdir on another one, then rerun the same command to resume "
                  f"(what was saved before is intact)")


def raise_if_disk_full(error: BaseException, path: str) -> None:
  """Raises DiskFull when a full disk caused `error`, a write under `path`."""
  disk_full = None if isinstance(error, DiskFull) else as_disk_full(error, path)
  if disk_full is not None:
    raise disk_full from error
