"""What a directory holds, to check that a refused or failed command changed nothing."""
import hashlib
import os


def snapshot(directory, folders: bool = True) -> dict:
  """Every file (its SHA-256) and, with `folders`, folder (None) under `directory`, hidden
  ones too, by relative path."""
  found = {}
  for root, subfolders, names in os.walk(directory):
    if folders:
      found.update({os.path.relpath(os.path.join(root, d), directory): None for d in subfolders})
    for name in names:
      path = os.path.join(root, name)
      with open(path, "rb") as f:
        found[os.path.relpath(path, directory)] = hashlib.sha256(f.read()).hexdigest()
  return found
