"""XLA compiler options for jaxvq's compiled steps, per platform.

XLA's CPU backend (jax 0.10) hands convolutions, matrix products and
reductions to YNNPACK by default. For the convolutions of these models, 3x3
and 4x4 kernels over 8x8 to 32x32 images, its own (Eigen) convolutions are
faster over a whole training step, backward pass included, while YNNPACK stays
faster for matrix products and reductions: jaxvq keeps YNNPACK for those two
only (`jaxvq bench --formulations` times the step both ways; the measurements
are in docs/performance.md). Other platforms get XLA's defaults.

Every jax.jit that runs a model goes through `jit`, so training, evaluation,
encoding and sampling compute with the same kernels.
"""
from __future__ import annotations

import jax

CPU_OPTIONS = {
    "xla_cpu_experimental_ynn_fusion_type":
        "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT,LIBRARY_FUSION_TYPE_REDUCE",
}


def for_mesh(mesh: jax.sharding.Mesh) -> dict:
  """The `compiler_options` for a jax.jit whose computation runs on `mesh`."""
  return dict(CPU_OPTIONS) if mesh.devices.flat[0].platform == "cpu" else {}


def jit(fn, mesh: jax.sharding.Mesh, **kwargs):
  """jax.jit(fn, **kwargs) with the compiler options of `mesh`'s platform."""
  return jax.jit(fn, compiler_options=for_mesh(mesh), **kwargs)
