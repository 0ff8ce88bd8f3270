"""Data parallelism: a 1-D `data` mesh, batches split along it, state replicated."""
from __future__ import annotations

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from jaxvq.errors import ConfigError


def make_mesh(num_devices: int = 0) -> Mesh:
  """A mesh over the first `num_devices` devices (0: all of them, of every process)."""
  devices = sorted(jax.devices(), key=lambda d: (d.process_index, d.id))
  if num_devices and jax.process_count() > 1 and num_devices != len(devices):
    raise ConfigError(f"config.num_devices={num_devices}: with several processes the mesh "
                      f"spans all {len(devices)} devices (set 0)")
  if num_devices:
    if num_devices > len(devices):
      raise ConfigError(f"config.num_devices={num_devices} but only {len(devices)} devices exist")
    devices = devices[:num_devices]
  return Mesh(np.asarray(devices), ("data",))


def check_divisible(batch_size: int, mesh: Mesh, what: str = "batch_size") -> None:
  if batch_size % mesh.size:
    raise ConfigError(f"config.{what}={batch_size} does not divide evenly over {mesh.size} "
                     f"devices: use a multiple of {mesh.size} (or set config.num_devices)")


def round_up_to_devices(size: int, mesh: Mesh) -> int:
  """The smallest multiple of the device count that holds `size` rows (the rest is padding)."""
  return -(-size // mesh.size) * mesh.size


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def batch_sharded(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P("data"))


def shard_batch(local_batch, mesh: Mesh):
  """This process's rows of a batch (`distributed.process_rows`) -> global arrays split
  along the leading (batch) axis. On one process: the whole batch."""
  if jax.process_count() == 1:
    return jax.device_put(local_batch, batch_sharded(mesh))
  return jax.tree.map(lambda x: jax.make_array_from_process_local_data(
      batch_sharded(mesh), np.asarray(x)), local_batch)


def to_host(tree):
  """Global arrays -> NumPy on every process (a collective: every process must call it)."""
  if jax.process_count() == 1:
    return jax.device_get(tree)
  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
  return multihost_utils.process_allgather(tree, tiled=True)


def replicate(tree, mesh: Mesh):
  return jax.device_put(tree, replicated(mesh))
