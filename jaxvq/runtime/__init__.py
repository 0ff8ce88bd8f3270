"""Where a computation runs: the device mesh, several processes, XLA's compiler options, files."""
