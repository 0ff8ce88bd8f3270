"""Times a config's compiled train step.

  python -m jaxvq.bench --config=configs/NAME.py [--config.key=value ...] [--steps=N]
  python -m jaxvq.bench --all                      every model config in configs/
  python -m jaxvq.bench --config=... --layers      also each layer, forward and backward
  python -m jaxvq.bench --config=... --formulations  jaxvq's XLA options and layer formulations
                                                   against the defaults
  python -m jaxvq.bench --config=... --peer="PYTHON ../shared/peers/torch_vqvae.py --batch 32"
  python -m jaxvq.bench --config=... --cpu_devices=2   the CPU as 2 devices, data parallel

Prints one JSON line per config: the model, backend, device kind and count,
batch, compile seconds, the median step time over the timed steps, images/s,
GFLOP per step from XLA's cost analysis of the compiled program, the GFLOP/s
that makes, and its fraction of the device's peak: a float32 (or bfloat16)
matrix product measured here (on a CPU split into several devices, each
device's share of the host's), and the vendor's figure for known GPUs and TPUs.

The step is the one training runs (`trainer.make_train_step`), fed one fixed
batch of random pixels (or codes, for a prior) of the config's shape, so no
dataset is needed. `--peer` runs another program that prints
{"images_per_s": ...} (e.g. the PyTorch reference) in turns with jaxvq, so
both are measured under the same conditions, and adds the ratio.
"""
from __future__ import annotations

import glob
import json
import os
import shlex
import statistics
import subprocess
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import flags
from flax import nnx
from ml_collections import config_flags

from jaxvq import cli, codes, datasets, distributed, nets, trainer, xla_options
from jaxvq.errors import ConfigError

FLAGS = flags.FLAGS


def define_flags() -> None:
  """The command's flags: defined only when it runs, so that importing the module defines none."""
  config_flags.DEFINE_config_file("config", None, "A config file in configs/.", lock_config=True)
  flags.DEFINE_bool("all", False, "Benchmark every model config in configs/.")
  flags.DEFINE_integer("steps", 20, "Timed steps (after the warm-up steps).")
  flags.DEFINE_integer("warmup", 3, "Untimed steps after compiling.")
  flags.DEFINE_bool("layers", False, "Also time each layer's forward and backward pass.")
  flags.DEFINE_bool("formulations", False, "Also time the step compiled with XLA's default options "
                    "against jaxvq's (xla_options), and jaxvq's formulation of its upsamplers, "
                    "1x1 and 4x4 stride-2 convolutions against the plain lax op (and, for the "
                    "upsamplers, a 3x3 convolution plus depth-to-space), layer by layer.")
  flags.DEFINE_string("trace", "", "Also write a jax.profiler trace of the timed steps here "
                      "(Perfetto's perfetto_trace.json.gz and TensorBoard's profile).")
  flags.DEFINE_string("peer", "", "A command printing a JSON line with images_per_s, run in turns.")
  flags.DEFINE_integer("rounds", 3, "With --peer, and for --formulations' step with XLA's "
                       "default options: how many turns each.")
  flags.DEFINE_integer("cpu_devices", 0, "On a CPU, split it into this many XLA devices "
                       "(0: one device), as train.py --cpu_devices does.")


# Image shapes of the datasets whose shape is known without loading them.
KNOWN_SHAPES = {"mnist": (28, 28, 1), "binarized_mnist": (28, 28, 1),
                "fashion_mnist": (28, 28, 1), "cifar10": (32, 32, 3)}
NUM_EXAMPLES = 512

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
  return datasets.load(config.dataset, image_size=config.image_size,
                       data_dir=config.data_dir or None).image_shape


def random_dataset(config):
  """A dataset of random pixels (or, for a prior, random codes) of the config's shapes."""
  rng = np.random.default_rng(0)
  labels = rng.integers(0, 10, NUM_EXAMPLES)
  shape = image_shape_of(config)
  if config.model.name != "pixelcnn":
    images = rng.integers(0, 256, (NUM_EXAMPLES, *shape), dtype=np.uint8)
    source = datasets.ArraySource(images, labels)
    return datasets.ImageDataset(f"random:{config.dataset}", source, source, num_classes=10)
  # The prior's grid is its VQ-VAE's latent grid: the images' size / 4.
  grid = (shape[0] // 4, shape[1] // 4)
  metadata = {"num_codes": config.model.num_codes, "grid_shape": list(grid),
              "num_classes": 10 if config.model.class_conditional else 0,
              "image_shape": list(shape), "step": 0, "dataset": config.dataset}
  source = datasets.ArraySource(
      rng.integers(0, config.model.num_codes, (NUM_EXAMPLES, *grid)).astype(np.uint16), labels)
  return codes.CodeDataset(f"random codes:{config.dataset}", source, source, metadata)


def median_seconds(fn, repeats: int) -> float:
  """The median wall time of `repeats` calls of `fn`, each waited for."""
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn())
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def _flops(compiled) -> float:
  analysis = compiled.cost_analysis()
  if isinstance(analysis, (list, tuple)):
    analysis = analysis[0]
  return float(analysis.get("flops", 0.0)) if analysis else 0.0


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
    self.exp = trainer.setup(config, dataset=random_dataset(config))
    self.batch = trainer.train_batch(self.exp, 0)
    step = trainer.make_train_step(self.exp, compiler_options)
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


def benchmark(timer: StepTimer, steps: int, warmup: int, trace_dir: str = "") -> dict:
  """The JSON row of a config's compiled step (see the module docstring)."""
  config = timer.config
  seconds = timer.time(steps, warmup)
  if trace_dir:
    with jax.profiler.trace(trace_dir, create_perfetto_trace=True):
      timer.time(steps)
  device = timer.exp.mesh.devices.flat[0]
  dtype = jnp.dtype(config.dtype)
  flops = _flops(timer.compiled)   # of one device's program
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
      "batch": config.batch_size, "dtype": dtype.name,
      "compile_s": round(timer.compile_seconds, 2), "median_step_ms": round(seconds * 1e3, 2),
      "images_per_s": round(config.batch_size / seconds, 1),
      "gflop_per_step_per_device": round(flops / 1e9, 3),
      "achieved_gflop_s_per_device": round(achieved, 1),
      "matmul_peak_gflop_s": round(measured_peak, 1),
      "fraction_of_matmul_peak": round(achieved / measured_peak, 3),
      "vendor_peak_gflop_s": vendor_peak,
      "fraction_of_vendor_peak": None if vendor_peak is None else round(achieved / vendor_peak, 4),
  }


# ----------------------------------------------------------------------------- layers


def _leaf_types():
  from jaxvq.models import pixelcnn  # pylint: disable=g-import-not-at-top
  return (nets.Conv, nnx.Linear, nets.Upsample2x, pixelcnn.PaddedConv)


def record_layer_inputs(model, x, key, labels):
  """[(path, module, input)] for each conv/linear/upsampling layer, in the order a forward pass calls them."""
  paths = {id(node): "/".join(map(str, path)) for path, node in nnx.iter_graph(model)}
  calls, originals = [], {}
  for cls in _leaf_types():
    originals[cls] = cls.__dict__.get("__call__")   # None: inherited

    def recording(self, inputs, *args, _call=cls.__call__, **kwargs):
      calls.append((paths.get(id(self), "?"), self, inputs))
      return _call(self, inputs, *args, **kwargs)

    cls.__call__ = recording
  try:
    model(x, key, labels)
  finally:
    for cls, call in originals.items():
      if call is None:
        del cls.__call__
      else:
        cls.__call__ = call
  return calls


def layer_profile(timer: StepTimer, steps: int) -> list:
  """Per layer: ms of its forward pass, and of forward + backward (parameter and input gradients)."""
  exp, state = timer.exp, timer.state
  inputs, labels = timer.batch
  x = exp.dataset.preprocess(inputs, jax.random.key(0))
  model = exp.model(state)
  rows = []
  for n, (path, module, layer_input) in enumerate(record_layer_inputs(model, x,
                                                                      jax.random.key(1), labels)):
    graphdef, params, rest = nnx.split(module, nnx.Param, ...)
    apply = lambda p, v, g=graphdef, r=rest: nnx.merge(g, p, r)(v)
    forward = xla_options.jit(apply, exp.mesh).lower(params, layer_input).compile()
    # The first layer reads the images: no input gradient, as in the train step.
    argnums = (0,) if n == 0 else (0, 1)
    grad = jax.grad(lambda p, v, f=apply: jnp.sum(f(p, v).astype(jnp.float32)), argnums=argnums)
    backward = xla_options.jit(grad, exp.mesh).lower(params, layer_input).compile()
    forward_s = median_seconds(lambda f=forward: f(params, layer_input), steps)
    both_s = median_seconds(lambda f=backward: f(params, layer_input), steps)
    rows.append({"layer": path, "type": type(module).__name__,
                 "input": list(layer_input.shape), "forward_ms": round(forward_s * 1e3, 3),
                 "forward_backward_ms": round(both_s * 1e3, 3),
                 "gflop_forward_backward": round(_flops(backward) / 1e9, 4)})
  return rows


# out[2m + a] of a 4x4, stride-2, padding-1 transposed convolution reads
# in[m - 1], in[m], in[m + 1] (taps t = 0, 1, 2 of a 3x3 convolution) through
# kernel rows _TAP[a][t] of the 4x4 kernel; -1 means "no tap".
_TAP = np.array([[3, 1, -1], [-1, 2, 0]])


def subpixel_transposed_conv(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """The 4x4 stride-2 transposed convolution as a 3x3 convolution to 4*O channels
  followed by depth-to-space (jaxvq's formulation before its matrix product)."""
  taps = jnp.asarray(_TAP)                                   # [2 parities, 3 taps]
  padded = jnp.pad(kernel, ((0, 1), (0, 1), (0, 0), (0, 0)))  # index -1 -> zero row
  # [ay, ty, ax, tx, I, O] -> [ty, tx, I, ay, ax, O]
  sub = padded[taps[:, :, None, None], taps[None, None, :, :]].transpose(1, 3, 4, 0, 2, 5)
  i, o = kernel.shape[2], kernel.shape[3]
  y = nets.lax_conv2d(x, sub.reshape(3, 3, i, 4 * o), 1, ((1, 1), (1, 1)))
  b, h, w, _ = y.shape
  y = y.reshape(b, h, w, 2, 2, o).transpose(0, 1, 3, 2, 4, 5)   # depth-to-space
  return y.reshape(b, 2 * h, 2 * w, o)


def _other_formulations(module) -> list:
  """Other ways of computing what `module` computes: [(name, fn(params, x))]."""
  dims = ("NHWC", "HWIO", "NHWC")
  if isinstance(module, nets.Upsample2x):
    # PyTorch's ConvTranspose2d(4, 2, 1) is lax.conv_transpose of the flipped kernel, padding 2.
    return [("lax.conv_transpose", lambda p, x: jax.lax.conv_transpose(
        x, p["kernel"][...][::-1, ::-1], (2, 2), ((2, 2), (2, 2)), dimension_numbers=dims
    ) + p["bias"][...]),
            ("conv3x3_depth_to_space", lambda p, x: subpixel_transposed_conv(
                x, p["kernel"][...]) + p["bias"][...])]
  lax_conv = lambda p, x: nets.lax_conv2d(x, p["kernel"][...], module.stride,
                                          module.padding) + p["bias"][...]
  if isinstance(module, nets.Conv) and module.kernel.shape[:2] == (1, 1):
    return [("lax.conv_general_dilated 1x1", lax_conv)]
  if isinstance(module, nets.Conv) and module.kernel.shape[:2] == (4, 4) and module.stride == 2:
    return [("lax.conv_general_dilated 4x4/2", lax_conv)]   # with XLA's input gradient
  return []


def step_options_row(timer: StepTimer, steps: int, rounds: int) -> list:
  """The whole step compiled with jaxvq's XLA options (xla_options) and with XLA's defaults,
  `rounds` turns each: the median step ms of each ([] where jaxvq sets no options)."""
  options = xla_options.for_mesh(timer.exp.mesh)
  if not options:
    return []
  defaults = StepTimer(timer.config, compiler_options={})
  ours, theirs = [], []
  for _ in range(rounds):
    ours.append(timer.time(steps, warmup=1))
    theirs.append(defaults.time(steps, warmup=1))
  return [{"layer": "train_step", "jaxvq_options": options,
           "jaxvq_step_ms": round(statistics.median(ours) * 1e3, 2),
           "xla_default_options_step_ms": round(statistics.median(theirs) * 1e3, 2)}]


def formulation_profile(timer: StepTimer, steps: int, rounds: int) -> list:
  """The step with and without jaxvq's XLA options; then for each upsampler, 1x1 conv and
  4x4 stride-2 conv: ms of forward + backward, jaxvq's way and the others, and the largest
  difference of their outputs from jaxvq's (they compute the same function)."""
  rows = step_options_row(timer, steps, rounds)   # first: timing the step replaces timer.state
  exp, state = timer.exp, timer.state
  inputs, labels = timer.batch
  x = exp.dataset.preprocess(inputs, jax.random.key(0))
  jit = lambda fn: xla_options.jit(fn, exp.mesh)
  for path, module, layer_input in record_layer_inputs(exp.model(state), x, jax.random.key(1),
                                                        labels):
    others = _other_formulations(module)
    if not others:
      continue
    graphdef, params, rest = nnx.split(module, nnx.Param, ...)
    ours = lambda p, v, g=graphdef, r=rest: nnx.merge(g, p, r)(v)
    ours_out = jit(ours)(params, layer_input)
    row = {"layer": path, "input": list(layer_input.shape)}
    for name, fn in [("jaxvq", ours)] + others:
      grad = jit(jax.grad(lambda p, v, f=fn: jnp.sum(f(p, v)), argnums=(0, 1)))
      row[f"{name}_forward_backward_ms"] = round(
          median_seconds(lambda g=grad: g(params, layer_input), steps) * 1e3, 3)
      if name != "jaxvq":
        row[f"{name}_max_abs_difference"] = float(jnp.max(jnp.abs(
            jit(fn)(params, layer_input) - ours_out)))
    rows.append(row)
  return rows


# ----------------------------------------------------------------------------- peers


def run_peer(command: str) -> float:
  done = subprocess.run(shlex.split(command), capture_output=True, text=True, check=False)
  if done.returncode != 0:
    raise ConfigError(f"--peer command failed ({done.returncode}): {done.stderr.strip()[-300:]}")
  lines = [line for line in done.stdout.splitlines() if line.strip().startswith("{")]
  if not lines:
    raise ConfigError(f"--peer command printed no JSON line: {done.stdout.strip()[-300:]}")
  return float(json.loads(lines[-1])["images_per_s"])


def compare_with_peer(timer: StepTimer, command: str, rounds: int, steps: int) -> dict:
  """jaxvq and the peer in turns, `rounds` times each: their images/s and the ratio of medians."""
  ours, theirs = [], []
  for _ in range(rounds):
    ours.append(timer.config.batch_size / timer.time(steps))
    theirs.append(run_peer(command))
  return {"jaxvq_images_per_s": [round(r, 1) for r in ours],
          "peer_images_per_s": [round(r, 1) for r in theirs],
          "ratio_of_medians": round(statistics.median(ours) / statistics.median(theirs), 3),
          "peer": command}


def model_configs() -> list:
  """Every config in configs/ but tiny.py, by path."""
  root = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs")
  return sorted(p for p in glob.glob(os.path.join(root, "*.py"))
                if os.path.basename(p) not in ("__init__.py", "tiny.py"))


def main(argv):
  del argv
  distributed.use_cpu_devices(FLAGS.cpu_devices)
  if FLAGS.all:
    runs = [(os.path.relpath(p), cli.load_config_file(p)) for p in model_configs()]
  elif FLAGS.config is not None:
    runs = [(None, FLAGS.config)]
  else:
    raise ConfigError("give --config=configs/NAME.py, or --all")
  for path, config in runs:
    timer = StepTimer(config)   # compiled once, warm after the first timing
    result = benchmark(timer, FLAGS.steps, FLAGS.warmup, FLAGS.trace)
    if path:
      result = {"config": path, **result}
    if FLAGS.peer:
      result.update(compare_with_peer(timer, FLAGS.peer, FLAGS.rounds, FLAGS.steps))
    print(json.dumps(result), flush=True)
    if FLAGS.layers or FLAGS.formulations:
      rows = layer_profile(timer, FLAGS.steps) if FLAGS.layers else []
      rows += formulation_profile(timer, FLAGS.steps, FLAGS.rounds) if FLAGS.formulations else []
      for row in rows:
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
  define_flags()
  cli.run(main)
