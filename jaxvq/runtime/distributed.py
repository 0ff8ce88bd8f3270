"""Training as one of several processes: TPU VM pods, multi-host GPU or CPU clusters.

Each process drives its own devices; the mesh spans every process's devices,
each process loads only its rows of every global batch (`process_rows`), and
only process 0 writes logs, metrics and images.
"""
from __future__ import annotations

import os

import jax
import numpy as np

from jaxvq.errors import ConfigError


def on_multihost_tpu() -> bool:
  """Whether this is one worker of a Cloud TPU VM pod slice (several hosts)."""
  return "," in os.environ.get("TPU_WORKER_HOSTNAMES", "")


def use_cpu_devices(count: int) -> None:
  """Splits the host's CPU into `count` XLA devices (0: leave JAX's default, one device).

  The mesh then spans them like any other devices, and each device's share of
  the batch runs in parallel with the others': on a small CPU this keeps the
  cores busier than one device's many small operations split over threads
  (docs/performance.md). Must run before JAX first touches a device.
  """
  if count < 0:
    raise ConfigError(f"--cpu_devices must be 0 (JAX's default) or a device count, got {count}")
  if count:
    jax.config.update("jax_num_cpu_devices", count)


def initialize(coordinator_address: str = "", num_processes: int = 0, process_id: int = -1,
               from_environment: bool = False) -> None:
  """jax.distributed.initialize() when this process is one of several; nothing otherwise.

  With an explicit coordinator (GPU/CPU clusters, or several processes on one
  machine) every argument is required. `from_environment` lets JAX find them
  itself (Cloud TPU VM pods, SLURM, Open MPI), as does a worker whose
  TPU_WORKER_HOSTNAMES lists several hosts.
  """
  if coordinator_address or num_processes > 1:
    if not (coordinator_address and num_processes > 1 and 0 <= process_id < num_processes):
      raise ConfigError("several processes need --coordinator_address=HOST:PORT, "
                        "--num_processes=N (N > 1) and --process_id=I (0 <= I < N) together")
    # CPU devices of different processes talk through gloo (GPUs and TPUs bring their own).
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address, num_processes, process_id)
  elif from_environment or on_multihost_tpu():
    jax.distributed.initialize()


def is_main_process() -> bool:
  """Whether this is process 0, the one that writes config.json, metrics, images and codes."""
  return jax.process_index() == 0


def process_rows(num_rows: int) -> slice:
  """This process's share of a global batch of `num_rows` rows (all of them on one process).

  The mesh orders devices by process, so process p's devices hold the p-th
  block of rows: every process loads only that block.
  """
  count, index = jax.process_count(), jax.process_index()
  if num_rows % count:
    raise ConfigError(f"a batch of {num_rows} does not divide over {count} processes")
  per_process = num_rows // count
  return slice(index * per_process, (index + 1) * per_process)


def barrier(name: str) -> None:
  """Waits until every process reaches this point (nothing on one process)."""
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
    multihost_utils.sync_global_devices(name)


def any_process(flag: bool) -> bool:
  """Whether `flag` is set on any process (a collective: every process must call it)."""
  if jax.process_count() == 1:
    return flag
  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
  return bool(np.any(multihost_utils.process_allgather(np.asarray([flag]))))
