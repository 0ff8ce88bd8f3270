"""Data parallelism: a 1-D `data` mesh, batches split along it, state replicated."""
from __future__ import annotations

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from jaxvq.errors import ConfigError


def make_mesh(num_devices: int = 0) -> Mesh:
  """A mesh over the first `num_devices` devices (0: all of them)."""
  devices = jax.devices()
  if num_devices:
    if num_devices > len(devices):
      raise ConfigError(f"config.num_devices={num_devices} but only {len(devices)} devices exist")
    devices = devices[:num_devices]
  return Mesh(np.asarray(devices), ("data",))


def check_divisible(batch_size: int, mesh: Mesh, what: str = "batch_size") -> None:
  if batch_size % mesh.size:
    raise ConfigError(f"config.{what}={batch_size} does not divide evenly over {mesh.size} "
                     f"devices: use a multiple of {mesh.size} (or set config.num_devices)")


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def batch_sharded(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P("data"))


def shard_batch(batch, mesh: Mesh):
  """Host arrays -> global arrays split along the leading (batch) axis."""
  return jax.device_put(batch, batch_sharded(mesh))


def replicate(tree, mesh: Mesh):
  return jax.device_put(tree, replicated(mesh))
