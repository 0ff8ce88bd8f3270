"""jaxvq's formulations of its layers and its XLA options, against the plain ones, and the
nearest-code search whole or in chunks: the same functions computed other ways, timed side by
side."""
from __future__ import annotations

import statistics

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxvq.bench.layers import record_layer_inputs
from jaxvq.bench.step import StepTimer, memory_of
from jaxvq.bench.timing import flops_of, median_seconds
from jaxvq.errors import ConfigError
from jaxvq.nets import conv_stages
from jaxvq.nets.layers import Conv, Upsample2x
from jaxvq.ops.conv_kernels import lax_conv2d
from jaxvq.ops.vq import search_chunk
from jaxvq.runtime import xla_options


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
  y = lax_conv2d(x, sub.reshape(3, 3, i, 4 * o), 1, ((1, 1), (1, 1)))
  b, h, w, _ = y.shape
  y = y.reshape(b, h, w, 2, 2, o).transpose(0, 1, 3, 2, 4, 5)   # depth-to-space
  return y.reshape(b, 2 * h, 2 * w, o)


def _other_formulations(module) -> list:
  """Other ways of computing what `module` computes: [(name, fn(params, x))]."""
  dims = ("NHWC", "HWIO", "NHWC")
  if isinstance(module, Upsample2x):
    # PyTorch's ConvTranspose2d(4, 2, 1) is lax.conv_transpose of the flipped kernel, padding 2.
    return [("lax.conv_transpose", lambda p, x: jax.lax.conv_transpose(
        x, p["kernel"][...][::-1, ::-1], (2, 2), ((2, 2), (2, 2)), dimension_numbers=dims
    ) + p["bias"][...]),
            ("conv3x3_depth_to_space", lambda p, x: subpixel_transposed_conv(
                x, p["kernel"][...]) + p["bias"][...])]
  lax_conv = lambda p, x: lax_conv2d(x, p["kernel"][...], module.stride,
                                          module.padding) + p["bias"][...]
  if isinstance(module, Conv) and module.kernel.shape[:2] == (1, 1):
    return [("lax.conv_general_dilated 1x1", lax_conv)]
  if isinstance(module, Conv) and module.kernel.shape[:2] == (4, 4) and module.stride == 2:
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


def search_chunk_profile(config, chunk_sizes, steps: int, warmup: int, rounds: int) -> list:
  """A VQ-VAE's train step with each of `chunk_sizes` as its quantizer's search_chunk_size
  (-1: the whole N x K distances at once, 0: automatic, > 0: codes per chunk), compiled side
  by side and timed in turns: `rounds` turns of `steps` steps each.

  Returns:
    One row per size: the codes per chunk it gives, the median over the turns of each
    turn's median step ms, compile seconds, GFLOP, and one device's memory (`memory_of`).
  """
  quantizer = config.model.get("quantizer", {})
  if config.model.name != "vqvae" or "search_chunk_size" not in quantizer:
    raise ConfigError("--search_chunk_sizes compares the nearest-code search of a VQ-VAE "
                      "whose quantizer has one (vq or residual_vq): give such a config")
  timers = []
  for size in chunk_sizes:
    sized = config.copy_and_resolve_references()
    sized.model.quantizer.search_chunk_size = size
    timers.append(StepTimer(sized))
  turns = [[] for _ in timers]
  for turn in range(rounds):
    for timer, times in zip(timers, turns):
      times.append(timer.time(steps, warmup=warmup if turn == 0 else 1))
  image_shape = timers[0].exp.dataset.image_shape
  factor = conv_stages(config.model)[0]
  grid = [image_shape[0] // factor, image_shape[1] // factor]
  num_inputs = config.batch_size * grid[0] * grid[1]
  rows = []
  for size, timer, times in zip(chunk_sizes, timers, turns):
    seconds = statistics.median(times)
    rows.append({
        "layer": "train_step", "search_chunk_size": size,
        "codes_per_chunk": search_chunk(num_inputs, quantizer.num_codes, size) or
                           quantizer.num_codes,
        "num_codes": quantizer.num_codes, "batch": config.batch_size, "latent_grid": grid,
        "compile_s": round(timer.compile_seconds, 2), "median_step_ms": round(seconds * 1e3, 2),
        "step_ms_per_turn": [round(t * 1e3, 2) for t in times],
        "images_per_s": round(config.batch_size / seconds, 1),
        "gflop_per_step_per_device": round(flops_of(timer.compiled) / 1e9, 3),
        **memory_of(timer.compiled)})
  return rows
