"""How a step's time and memory, and a prior's sampling time, grow: one config swept over a
key at a time (codebook size, image size, batch), and a prior sampled at several grid sizes.

  jaxvq bench --config=configs/vqvae_cifar10.py --sweep=num_codes=512,4096,16384 \
      --sweep=image_size=32,64,128 --sweep=batch_size=16,32,64 --plot=growth.png
  jaxvq bench --config=configs/pixelcnn_fashion_mnist.py --sampling --grids=7,16,32

Each value is its own compiled step (`StepTimer`), with every other key as the config has it.
"""
from __future__ import annotations

import gc

import jax

from jaxvq.bench import step as step_lib
from jaxvq.bench.timing import median_seconds
from jaxvq.errors import ConfigError
from jaxvq.sampling import PYTHON_LOOP, make_sampler, sample_labels, sampler_names
from jaxvq.train.experiment import setup

# Short names of the keys a sweep may vary; any other dotted config path works as well.
SWEEP_KEYS = {"num_codes": "model.quantizer.num_codes", "image_size": "image_size",
              "batch_size": "batch_size", "downsample": "model.downsample"}


def parse_sweep(text: str) -> tuple:
  """'num_codes=512,4096' -> ('num_codes', 'model.quantizer.num_codes', [512, 4096])."""
  name, _, values = text.partition("=")
  try:
    numbers = [int(v) for v in values.split(",") if v]
  except ValueError:
    numbers = []
  if not name or not numbers:
    raise ConfigError(f"--sweep takes KEY=V1,V2,... with integer values (KEY one of "
                      f"{', '.join(SWEEP_KEYS)} or a config path), got {text!r}")
  return name, SWEEP_KEYS.get(name, name), numbers


def _set(config, path: str, value) -> None:
  *parents, leaf = path.split(".")
  section = config
  for part in parents:
    section = section[part] if part in section else None
    if section is None:
      break
  if section is None or leaf not in section:
    raise ConfigError(f"--sweep: the config has no key {path!r}")
  section[leaf] = value


def step_growth(config, sweeps, steps: int, warmup: int):
  """Yields one `step.benchmark` row per swept value, with "sweep" and "value" first."""
  for name, path, values in sweeps:
    for value in values:
      swept = config.copy_and_resolve_references()
      _set(swept, path, value)
      timer = step_lib.StepTimer(swept)
      yield {"sweep": name, "value": value, **step_lib.benchmark(timer, steps, warmup)}
      del timer
      gc.collect()   # the largest values' buffers go before the next one compiles


def sampling_growth(config, grids, num_samples: int, repeats: int = 3, steps=(), samplers=()):
  """Yields, per grid size g and per compiled sampler of the prior (and, for a prior that
  decodes in parallel, per number of `steps`), its time per image on a g x g grid (random
  parameters: the cost does not depend on them) and the sequential model calls per image.

  The speed-up of each prior's default sampler over its others (the PixelCNN's row cache,
  the transformer's KV cache against a full pass per position) is in `speedup`; `samplers`
  keeps only those named (default: all)."""
  for grid in grids:
    exp = setup(config, step_lib.random_dataset(config, grid=grid, use_saved_codes=False))
    state, key = exp.initial_state, jax.random.key(0)
    prior = exp.model(state)
    labels = sample_labels(prior, num_samples)
    variants = [(how, {}) for how in sampler_names(prior)
                if how != PYTHON_LOOP and (not samplers or how in samplers)]
    if "steps" in prior.SAMPLE_OPTIONS:
      variants = [(how, {"steps": s}) for how, _ in variants
                  for s in (steps or [prior.sequential_calls()])]
    rows = []
    for how, options in variants:
      sampler = make_sampler(exp, num_samples, how=how, **options)
      jax.block_until_ready(sampler(state, key, labels))   # compiles
      seconds = median_seconds(lambda: sampler(state, key, labels), repeats)
      rows.append({"grid": [grid, grid], "positions": grid * grid, "num_samples": num_samples,
                   "prior": config.model.name, "sampler": how, **options,
                   "sequential_calls_per_image": prior.sequential_calls(how, **options),
                   "ms_per_image": round(seconds / num_samples * 1e3, 3),
                   "backend": jax.default_backend(), "device": jax.devices()[0].device_kind})
    for row in rows:
      row["speedup"] = round(rows[0]["ms_per_image"] / row["ms_per_image"], 2)
      yield row


def _label(row) -> str:
  return f"{row['prior']} {row['sampler']}" + (f" T={row['steps']}" if "steps" in row else "")


def plot_growth(step_rows, sampling_rows, path: str) -> str:
  """One PNG: per swept key, step ms and peak MiB against its values (log-log); and the
  samplers' ms per image against the grid's positions."""
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top
  from matplotlib.ticker import NullLocator  # pylint: disable=g-import-not-at-top
  sweeps = list(dict.fromkeys(r["sweep"] for r in step_rows))
  columns = len(sweeps) + bool(sampling_rows)
  if not columns:
    raise ConfigError("--plot needs --sweep (or --sampling with --grids)")
  figure = Figure(figsize=(4.2 * columns, 3.6))
  axes = figure.subplots(1, columns, squeeze=False)[0]
  for ax, name in zip(axes, sweeps):
    rows = [r for r in step_rows if r["sweep"] == name]
    values = [r["value"] for r in rows]
    ax.loglog(values, [r["median_step_ms"] for r in rows], "o-", color="C0", label="step ms")
    ax.set_xlabel(name)
    ax.set_ylabel("step ms", color="C0")
    if all("peak_memory_mib" in r for r in rows):
      memory = ax.twinx()
      memory.loglog(values, [r["peak_memory_mib"] for r in rows], "s--", color="C3")
      memory.set_ylabel("peak MiB (XLA)", color="C3")
    ax.set_xticks(values, [str(v) for v in values])
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_title(f"{rows[0]['model']}, {name}", fontsize=9)
  if sampling_rows:
    ax = axes[-1]
    for label in dict.fromkeys(_label(r) for r in sampling_rows):
      rows = [r for r in sampling_rows if _label(r) == label]
      ax.loglog([r["positions"] for r in rows], [r["ms_per_image"] for r in rows], "o-",
                label=label)
    positions = sorted({r["positions"] for r in sampling_rows})
    ax.set_xticks(positions, [f"{int(p ** 0.5)}x{int(p ** 0.5)}" for p in positions])
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlabel("code grid")
    ax.set_ylabel("ms per image")
    ax.set_title("prior sampling", fontsize=9)
    ax.legend(fontsize=8)
  figure.tight_layout()
  figure.savefig(path, dpi=110)
  return path
