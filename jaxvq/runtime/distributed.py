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


AUTO_MIN_BATCH_PER_DEVICE = 8   # below this a device's share is too small to keep a core busy

# How long a CPU device waits in a collective for the others before XLA aborts the process.
# XLA's default, 40 s, was exceeded when more programs than cores shared the machine (a
# training beside another on 2 cores was aborted so); 5 minutes still ends a run whose
# collective really hangs (docs/scaling.md).
CPU_COLLECTIVE_TIMEOUT_FLAGS = ("--xla_cpu_collective_call_terminate_timeout_seconds=300",
                                "--xla_cpu_collective_call_warn_stuck_timeout_seconds=60")


def patient_cpu_collectives() -> None:
  """Adds CPU_COLLECTIVE_TIMEOUT_FLAGS to XLA_FLAGS (unless they are set there); must run
  before JAX first touches a device."""
  flags = os.environ.get("XLA_FLAGS", "")
  added = [f for f in CPU_COLLECTIVE_TIMEOUT_FLAGS if f.split("=")[0] not in flags]
  if added:
    os.environ["XLA_FLAGS"] = " ".join([flags] + added).strip()


def cpu_devices_for(batch_size: int, cores: int) -> int:
  """The CPU layout `--cpu_devices=0` picks: one device per core when the batch divides among
  them with at least AUTO_MIN_BATCH_PER_DEVICE examples each, else one device.

  Measured on 2 cores (docs/performance.md): two devices, each running its half of the batch,
  keep the cores busier than one device splitting each small operation over both.
  """
  if cores > 1 and batch_size % cores == 0 and batch_size // cores >= AUTO_MIN_BATCH_PER_DEVICE:
    return cores
  return 1


def use_cpu_devices(count: int, batch_size: int = 0, several_processes: bool = False) -> int:
  """Splits the host's CPU into `count` XLA devices; 0 picks `cpu_devices_for(batch_size)`.

  The mesh then spans them like any other devices, and each device's share of
  the batch runs in parallel with the others'. Only the CPU backend is split: on a GPU or TPU
  host the mesh is the accelerators, whatever this says. The automatic choice is left alone
  when XLA_FLAGS already sets the count, and is one device for a run of several processes (each
  process's devices must then be given explicitly). Must run before JAX first touches a device.

  Returns the count set (0: none set, JAX's or XLA_FLAGS' own).
  """
  if count < 0:
    raise ConfigError(f"--cpu_devices must be 0 (automatic) or a device count, got {count}")
  patient_cpu_collectives()
  if count == 0:
    if several_processes or "xla_force_host_platform_device_count" in os.environ.get(
        "XLA_FLAGS", ""):
      return 0
    count = cpu_devices_for(batch_size, len(os.sched_getaffinity(0)))
  jax.config.update("jax_num_cpu_devices", count)
  return count


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


def process_rows(num_rows: int, index: int | None = None, count: int | None = None) -> slice:
  """This process's share of a global batch of `num_rows` rows (all of them on one process).

  The mesh orders devices by process, so process p's devices hold the p-th
  block of rows: every process loads only that block. `index` and `count` default to
  this process's (jax.process_index(), jax.process_count()).
  """
  count = jax.process_count() if count is None else count
  index = jax.process_index() if index is None else index
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
