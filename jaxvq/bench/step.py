"""A config's compiled train step, timed: images/s, GFLOP, the fraction of the device's peak,
and its device memory from XLA's analysis of the compiled program.

The step is the one training runs (`jaxvq.train.steps.make_train_step`), fed one
fixed batch of random pixels (or codes, for a prior) of the config's shape, so
no dataset is needed. The peak is a float32 (or bfloat16) matrix product
measured here (on a CPU split into several devices, each device's share of the
host's), and the vendor's figure for known GPUs and TPUs.
"""
from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxvq.bench.timing import flops_of, median_seconds
from jaxvq.data import load_dataset
from jaxvq.data.sources import ArraySource, ImageDataset
from jaxvq.errors import ConfigError
from jaxvq.priors.base import Prior
from jaxvq.registry import model_class
from jaxvq.tokens import codes
from jaxvq.tokens.codes import CodeDataset
from jaxvq.train import steps
from jaxvq.train.experiment import setup

# Image shapes of the datasets whose shape is known without loading them.
KNOWN_SHAPES = {"mnist": (28, 28, 1), "binarized_mnist": (28, 28, 1),
                "fashion_mnist": (28, 28, 1), "cifar10": (32, 32, 3)}
NUM_EXAMPLES = 512
# A prior config's code grid and K, where its VQ-VAE's codes do not exist yet.
PRIOR_GRID, PRIOR_NUM_CODES = 8, 512

# Vendors' dense peak TFLOP/s per chip: (float32, bfloat16); None where not published.
VENDOR_PEAK_TFLOPS = {
    "H200": (67.0, 989.0), "H100": (67.0, 989.0), "A100": (19.5, 312.0), "L4": (30.3, 121.0),
    "TPU v6 lite": (None, 918.0), "TPU v5 lite": (None, 197.0), "TPU v5p": (None, 459.0),
    "TPU v5": (None, 459.0), "TPU v4": (None, 275.0), "TPU v3": (None, 123.0),
}


def image_shape_of(config) -> tuple:
  if config.image_size and not config.dataset.startswith("npz:"):
    channels = KNOWN_SHAPES.get(config.dataset, (0, 0, 3))[2]
    return (config.image_size, config.image_size, channels)
  if config.dataset in KNOWN_SHAPES:
    return KNOWN_SHAPES[config.dataset]
  return load_dataset(config.dataset, image_size=config.image_size,
                      data_dir=config.data_dir or None).image_shape


def is_prior(config) -> bool:
  """Whether `config` trains a prior over codes (its data: a tokenizer's codes)."""
  return issubclass(model_class(config.model.name), Prior)


def random_dataset(config, grid=PRIOR_GRID, num_codes: int = PRIOR_NUM_CODES,
                   use_saved_codes: bool = True, num_examples: int = NUM_EXAMPLES):
  """A dataset of `num_examples` random pixels (or, for a prior, random codes) of the config's
  shapes; binarized where the config's dataset is.

  A prior's grid and K are those of its VQ-VAE's codes where they exist (and
  `use_saved_codes`), else `grid` x `grid` (or `grid` = (h, w)) and `num_codes`.
  """
  rng = np.random.default_rng(0)
  labels = rng.integers(0, 10, num_examples)
  if not is_prior(config):
    shape = image_shape_of(config)
    images = rng.integers(0, 256, (num_examples, *shape), dtype=np.uint8)
    source = ArraySource(images, labels)
    return ImageDataset(f"random:{config.dataset}", source, source,
                        binarize=config.dataset == "binarized_mnist", num_classes=10)
  saved = codes.read_metadata(codes.workdir_of(config.dataset)) if use_saved_codes else None
  if saved is not None:
    grid_shape, num_codes = tuple(saved["grid_shape"]), saved["num_codes"]
  else:
    grid_shape = (grid, grid) if isinstance(grid, int) else tuple(grid)
  shape = (4 * grid_shape[0], 4 * grid_shape[1], 1)   # the images the codes stand for
  metadata = {"num_codes": num_codes, "grid_shape": list(grid_shape),
              "num_classes": 10 if config.model.class_conditional else 0,
              "image_shape": list(shape), "step": 0, "dataset": config.dataset}
  source = ArraySource(rng.integers(0, num_codes, (num_examples, *grid_shape)).astype(np.uint16),
                       labels)
  return CodeDataset(f"random codes:{config.dataset}", source, source, metadata)


def matmul_peak_gflops(dtype=jnp.float32, size: int = 0) -> float:
  """GFLOP/s of a size x size matrix product on the first device (the best of 5 runs).

  2048 on a CPU; 8192 on an accelerator, where a smaller product is over before
  its dispatch cost is paid.
  """
  size = size or (2048 if jax.default_backend() == "cpu" else 8192)
  a = jax.device_put(jnp.ones((size, size), dtype) / size)
  product = jax.jit(lambda a: a @ a)
  jax.block_until_ready(product(a))
  best = min(median_seconds(lambda: product(a), 1) for _ in range(5))
  return 2 * size ** 3 / best / 1e9


def vendor_peak_gflops(device, dtype) -> float | None:
  for name, (fp32, bf16) in VENDOR_PEAK_TFLOPS.items():
    if name.lower() in device.device_kind.lower():
      peak = bf16 if dtype == jnp.bfloat16 else fp32
      return None if peak is None else peak * 1e3
  return None


class StepTimer:
  """A config's train step, compiled, with a fixed batch: `time(steps)` -> median seconds."""

  def __init__(self, config, compiler_options: dict | None = None):
    """`compiler_options`: XLA's, for the step (None: jaxvq's, as training uses)."""
    self.config = config
    self.exp = setup(config, random_dataset(config))
    self.batch = steps.train_batch(self.exp, 0)
    step = steps.make_train_step(self.exp, compiler_options)
    start = time.perf_counter()
    self.compiled = step.lower(self.exp.initial_state, self.batch).compile()
    self.compile_seconds = time.perf_counter() - start
    self.state = self.exp.initial_state

  def warm(self, steps: int) -> None:
    for _ in range(steps):
      self.state, _ = self.compiled(self.state, self.batch)
    jax.block_until_ready(self.state)

  def time(self, steps: int, warmup: int = 0) -> float:
    """The median seconds of `steps` steps (each waited for), after `warmup` untimed ones."""
    if steps < 1:
      raise ConfigError(f"--steps must be at least 1, got {steps}")
    self.warm(warmup)

    def one_step():
      self.state, metrics = self.compiled(self.state, self.batch)
      return metrics

    jax.block_until_ready(self.state)
    return median_seconds(one_step, steps)


def memory_of(compiled) -> dict:
  """One device's memory for a compiled program, from XLA's memory analysis, in MiB.

  Returns:
    {"argument_mib", "output_mib", "temp_mib", "alias_mib": outputs that reuse donated
    arguments' buffers, "peak_memory_mib": arguments + outputs - aliased + temporaries,
    what the program needs at most}; {} where the backend gives no analysis. (XLA's own
    peak_memory_in_bytes leaves the temporaries out on CPU, so it is not used.)
  """
  stats = compiled.memory_analysis()
  if isinstance(stats, (list, tuple)):
    stats = stats[0] if stats else None
  if stats is None:
    return {}
  mib = lambda size: round(size / 2**20, 2)
  argument, output = stats.argument_size_in_bytes, stats.output_size_in_bytes
  temp, alias = stats.temp_size_in_bytes, stats.alias_size_in_bytes
  peak = argument + output - alias + temp
  return {"argument_mib": mib(argument), "output_mib": mib(output), "temp_mib": mib(temp),
          "alias_mib": mib(alias), "peak_memory_mib": mib(peak)}


def benchmark(timer: StepTimer, steps: int, warmup: int, trace_dir: str = "") -> dict:
  """The JSON row of a config's compiled step (see the module docstring)."""
  config = timer.config
  seconds = timer.time(steps, warmup)
  if trace_dir:
    with jax.profiler.trace(trace_dir, create_perfetto_trace=True):
      timer.time(steps)
  device = timer.exp.mesh.devices.flat[0]
  dtype = jnp.dtype(config.dtype)
  flops = flops_of(timer.compiled)   # of one device's program
  achieved = flops / seconds / 1e9
  measured_peak = matmul_peak_gflops(dtype)
  if jax.default_backend() == "cpu":
    # CPU devices split one host's cores (--cpu_devices), and the matrix product ran on all
    # of them: each of the step's devices on this host gets an equal share of that peak.
    measured_peak /= sum(d.process_index == jax.process_index()
                         for d in timer.exp.mesh.devices.flat)
  vendor_peak = vendor_peak_gflops(device, dtype)
  return {
      "model": config.model.name, "dataset": config.dataset, "backend": jax.default_backend(),
      "device_kind": device.device_kind, "device_count": timer.exp.mesh.size,
      "batch": config.batch_size, "input_shape": list(timer.exp.dataset.image_shape),
      "dtype": dtype.name,
      "compile_s": round(timer.compile_seconds, 2), "median_step_ms": round(seconds * 1e3, 2),
      "images_per_s": round(config.batch_size / seconds, 1),
      "gflop_per_step_per_device": round(flops / 1e9, 3),
      "achieved_gflop_s_per_device": round(achieved, 1),
      "matmul_peak_gflop_s": round(measured_peak, 1),
      "fraction_of_matmul_peak": round(achieved / measured_peak, 3),
      "vendor_peak_gflop_s": vendor_peak,
      "fraction_of_vendor_peak": None if vendor_peak is None else round(achieved / vendor_peak, 4),
      **memory_of(timer.compiled),
  }
