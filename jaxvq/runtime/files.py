"""Files written whole or not at all: a reader (or a rerun after a crash) never sees half of one."""
from __future__ import annotations

import os
import shutil


def write_atomically(path: str, text: str) -> None:
  """Writes `text` to `path` through a temporary file renamed over it."""
  tmp = f"{path}.tmp"
  with open(tmp, "w") as f:
    f.write(text)
  os.replace(tmp, path)


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
