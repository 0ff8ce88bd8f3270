"""The training loop shared by every model: `train_and_evaluate(config, workdir)`.

The step is a pure function of explicit state, `train_step(state, (inputs,
labels)) -> (state, metrics)`, compiled once with `jax.jit`: the NNX model is split into
a static graph definition and its parameters at the boundary and merged
inside. Randomness comes from one key: step s uses fold_in(key, s).

Workdir layout:
  config.json        the run's configuration
  metrics.jsonl      one JSON row per log/eval: step, split, losses, ...
  checkpoints/<step> Orbax checkpoints of the train state
  images/            reconstructions_<step>.png, samples_<step>.png, code_usage_<step>.png
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import threading
import time
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax import nnx, struct

from jaxvq import (checkpoint, codes, config_base, datasets, distributed, images, input_pipeline,
                   quantizer, sharding, xla_options)
from jaxvq.checkpoint import Checkpointer
from jaxvq.errors import ConfigError, Preempted, RunError, TrainingDiverged
from jaxvq.metrics_writer import MetricsWriter
from jaxvq.models import build_model

# Keys besides the steps' fold_in(key, step): evaluation's randomness
# (binarization, VAE samples) is the same at every evaluation.
_EVAL_KEY_TAG, _SAMPLE_KEY_TAG, _INIT_KEY_TAG = 2**31 - 1, 2**31 - 2, 2**31 - 3


@struct.dataclass
class TrainState:
  step: jax.Array          # int32 scalar
  params: Any              # nnx.State of nnx.Param
  opt_state: Any           # optax state
  model_state: Any         # nnx.State of every other model variable
  rng: jax.Array           # uint32 key data of the run's base key

  def key(self, tag) -> jax.Array:
    """The base key folded with `tag` (the step, or one of the tags above)."""
    return jax.random.fold_in(jax.random.wrap_key_data(self.rng), tag)


@struct.dataclass
class Experiment:
  """Everything a run needs besides its state; built once by `setup`."""
  config: ml_collections.ConfigDict = struct.field(pytree_node=False)
  dataset: datasets.ImageDataset = struct.field(pytree_node=False)
  mesh: Any = struct.field(pytree_node=False)
  graphdef: Any = struct.field(pytree_node=False)
  optimizer: Any = struct.field(pytree_node=False)
  initial_state: TrainState = None

  def model(self, state: TrainState):
    return nnx.merge(self.graphdef, state.params, state.model_state)


def load_config(workdir: str) -> ml_collections.ConfigDict:
  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    raise RunError(f"{workdir} holds no run (no config.json): train one with "
                   f"`python train.py --config=configs/NAME.py --workdir={workdir}`")
  try:
    with open(path) as f:
      return ml_collections.ConfigDict(json.load(f))
  except json.JSONDecodeError as e:
    raise RunError(f"{path} is not valid JSON ({e}): it was not written by jaxvq, or was edited "
                   f"by hand") from e


def restore_run(workdir: str, step=None):
  """The experiment and train state of the run in `workdir`, at `step` (default: the latest)."""
  config = load_config(workdir)
  directory = os.path.join(workdir, "checkpoints")
  step = checkpoint.latest_step(directory) if step is None else step
  if step is None:
    raise RunError(f"{workdir} has no checkpoint yet: train it first (rerun its train.py command)")
  exp = setup(config)
  checkpointer = Checkpointer(directory, read_only=True)
  state = checkpointer.restore(step, exp.initial_state)
  checkpointer.close()
  return exp, state


def encode_codes(vqvae_workdir: str) -> dict:
  """Saves the code grids of a VQ-VAE run's latest checkpoint under VQVAE_DIR/codes/."""
  name = load_config(vqvae_workdir).model.name
  if name != "vqvae":
    raise RunError(f"{vqvae_workdir} holds a run of model {name!r}, not a VQ-VAE: codes come "
                   f"from a VQ-VAE's workdir")
  exp, state = restore_run(vqvae_workdir)
  return codes.save(exp, state, vqvae_workdir)


def _load_dataset(config: ml_collections.ConfigDict):
  """The images a config names, or for a prior the codes of its VQ-VAE (encoded if missing)."""
  if config.model.name != "pixelcnn":
    return datasets.load(config.dataset, image_size=config.image_size,
                         data_dir=config.data_dir or None)
  if not config.get("vqvae_workdir"):
    raise RunError("a prior needs --config.vqvae_workdir=DIR, the workdir of a trained VQ-VAE")
  # Codes are made only when missing: a prior never switches codes behind the
  # user's back (`python -m jaxvq.encode` refreshes them on purpose).
  if codes.read_metadata(config.vqvae_workdir) is None:
    encode_codes(config.vqvae_workdir)
  return codes.load(config.vqvae_workdir)


COMPUTE_DTYPES = ("float32", "bfloat16")


def setup(config: ml_collections.ConfigDict, dataset=None) -> Experiment:
  """Loads the data (unless given), builds the model and optimizer, places the initial state."""
  dataset = _load_dataset(config) if dataset is None else dataset
  mesh = sharding.make_mesh(config.num_devices)
  sharding.check_divisible(config.batch_size, mesh)
  input_pipeline.check_batch_size(config.batch_size, len(dataset.train))
  if isinstance(dataset, codes.CodeDataset):  # the prior's size follows its codes
    if config.model.class_conditional and not dataset.num_classes:
      raise ConfigError(f"{dataset.metadata['dataset']} has no labels: set "
                        f"--config.model.class_conditional=False")
    codes_step = dataset.metadata["step"]
    if config.get("vqvae_step", codes_step) != codes_step:  # a saved prior's config
      raise RunError(f"this prior was trained on the codes of the VQ-VAE's checkpoint of step "
                     f"{config.vqvae_step}, but {codes.codes_dir(config.vqvae_workdir)} now holds "
                     f"those of step {codes_step}: train a new prior on them (in a new --workdir)")
    config = ml_collections.ConfigDict(config.to_dict())
    config.model.num_codes, config.model.num_classes = dataset.num_codes, dataset.num_classes
    config.model.image_dims = dataset.image_dims
    config.vqvae_step = codes_step
  dtype = config.get("dtype", "float32")  # runs saved before jaxvq had the key: float32
  if dtype not in COMPUTE_DTYPES:
    raise ConfigError(f"dtype must be one of {COMPUTE_DTYPES}, got {dtype!r}")
  model = build_model(config.model, dataset.image_shape, data_variance=dataset.pixel_variance(),
                      seed=config.seed, dtype=jnp.dtype(dtype))
  graphdef, params, model_state = nnx.split(model, nnx.Param, ...)
  optimizer = optax.adam(learning_rate_schedule(config))
  state = jax.jit(lambda p, s: TrainState(
      step=jnp.zeros((), jnp.int32), params=p, opt_state=optimizer.init(p), model_state=s,
      rng=jax.random.key_data(jax.random.key(config.seed))),
                  out_shardings=sharding.replicated(mesh))(params, model_state)
  return Experiment(config, dataset, mesh, graphdef, optimizer, state)


LEARNING_RATE_SCHEDULES = ("constant", "cosine")


def learning_rate_schedule(config: ml_collections.ConfigDict):
  """config.learning_rate, constant or cosine-decayed to 0 over config.num_train_steps."""
  schedule = config.get("learning_rate_schedule", "constant")  # runs saved before the key
  if schedule == "constant":
    return config.learning_rate
  if schedule == "cosine":
    if config.num_train_steps < 1:
      raise ConfigError(f"a cosine learning rate decays over num_train_steps, which must be at "
                        f"least 1; got {config.num_train_steps}")
    return optax.cosine_decay_schedule(config.learning_rate, config.num_train_steps)
  raise ConfigError(f"learning_rate_schedule must be one of {LEARNING_RATE_SCHEDULES}, "
                    f"got {schedule!r}")


def train_batch(exp: Experiment, step: int):
  """The (inputs, labels) of training step `step` (0-based), split over the devices.

  Each process loads only its own rows of the global batch.
  """
  indices = input_pipeline.train_indices(len(exp.dataset.train), exp.config.batch_size,
                                         exp.config.seed, step)
  indices = indices[distributed.process_rows(len(indices))]
  return sharding.shard_batch((exp.dataset.train.inputs(indices),
                               exp.dataset.train.labels(indices)), exp.mesh)


def make_train_step(exp: Experiment, compiler_options: dict | None = None):
  """The jitted train step; `compiler_options` (XLA's) default to jaxvq's (xla_options)."""

  def train_step(state: TrainState, batch):
    inputs, labels = batch
    data_key, model_key, update_key = jax.random.split(state.key(state.step), 3)
    x = exp.dataset.preprocess(inputs, data_key)

    def loss_fn(params):
      out = nnx.merge(exp.graphdef, params, state.model_state)(x, model_key, labels)
      return out.loss, out

    (_, out), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    updates, opt_state = exp.optimizer.update(grads, state.opt_state, state.params)
    model = nnx.merge(exp.graphdef, optax.apply_updates(state.params, updates), state.model_state)
    metrics = {k: jnp.mean(v) for k, v in out.per_example.items()}
    metrics.update(out.batch_metrics)
    metrics.update(model.update_after_step(out, update_key, state.step))
    _, params, model_state = nnx.split(model, nnx.Param, ...)
    return state.replace(step=state.step + 1, params=params, opt_state=opt_state,
                         model_state=model_state), metrics

  if compiler_options is None:
    compiler_options = xla_options.for_mesh(exp.mesh)
  return jax.jit(train_step, donate_argnums=0, compiler_options=compiler_options)


def initialize_from_data(exp: Experiment, state: TrainState) -> TrainState:
  """Gives the model the first training batches before step 1 (e.g. k-means of its codebook)."""
  num_batches = exp.config.model.get("kmeans_init_batches", 0)
  if not num_batches:
    return state
  batches = np.stack([exp.dataset.train.inputs(input_pipeline.train_indices(
      len(exp.dataset.train), exp.config.batch_size, exp.config.seed, s)) for s in range(num_batches)])

  def initialize(state, batches):
    data_key, model_key = jax.random.split(state.key(_INIT_KEY_TAG))
    model = exp.model(state)
    model.initialize_from_data(exp.dataset.preprocess(batches, data_key), model_key)
    _, params, model_state = nnx.split(model, nnx.Param, ...)
    return state.replace(params=params, model_state=model_state)

  return xla_options.jit(initialize, exp.mesh)(state, sharding.replicate(batches, exp.mesh))


def _eval_inputs(exp: Experiment, state: TrainState, batch, indices):
  """The preprocessed test examples `indices` and a model key, the same at every evaluation.

  Each test example is binarized with a key of its own index, so the binarized
  test set does not depend on the evaluation batch size.
  """
  key = state.key(_EVAL_KEY_TAG)
  example_keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(indices)
  x = jax.vmap(lambda k, b: exp.dataset.preprocess(b[None], k)[0])(example_keys, batch)
  return x, jax.random.fold_in(key, indices[0])


def eval_batch_size(exp: Experiment) -> int:
  """config.eval_batch_size rounded up to a multiple of the device count (padding is masked)."""
  return -(-exp.config.eval_batch_size // exp.mesh.size) * exp.mesh.size


def make_eval_step(exp: Experiment):

  def eval_step(state: TrainState, batch, mask: jax.Array, indices: jax.Array):
    inputs, labels = batch
    x, model_key = _eval_inputs(exp, state, inputs, indices)
    model = exp.model(state)
    out = model(x, model_key, labels)
    sums = {k: jnp.sum(v * mask) for k, v in out.per_example.items()}
    sums["count"] = jnp.sum(mask)
    if out.code_indices is not None:
      sums["code_counts"] = quantizer.code_counts(out.code_indices, model.num_codes, mask)
    return sums, x, out.reconstruction

  return xla_options.jit(eval_step, exp.mesh)


def make_iwae_step(exp: Experiment, num_samples: int):

  def iwae_step(state, batch, mask, indices):
    x, model_key = _eval_inputs(exp, state, batch[0], indices)
    nll = exp.model(state).importance_weighted_nll(x, jax.random.fold_in(model_key, 1), num_samples)
    return jnp.sum(nll * mask)

  return xla_options.jit(iwae_step, exp.mesh)


def evaluate(exp: Experiment, state: TrainState, eval_step, iwae_step=None):
  """Test metrics averaged over the test split, the first batch's images, the code counts."""
  num = len(exp.dataset.test)
  if exp.config.num_eval_examples:
    num = min(num, exp.config.num_eval_examples)
  iwae_limit = exp.config.model.get("importance_examples", 0) or num
  totals, first, iwae_total, iwae_count = None, None, 0.0, 0.0
  for indices, mask in input_pipeline.eval_batches(num, eval_batch_size(exp)):
    rows = distributed.process_rows(len(indices))   # this process loads only its rows
    batch, mask_on_devices, indices_on_devices = sharding.shard_batch(
        ((exp.dataset.test.inputs(indices[rows]), exp.dataset.test.labels(indices[rows])),
         mask[rows], indices[rows].astype(np.int32)), exp.mesh)
    sums, x, recon = eval_step(state, batch, mask_on_devices, indices_on_devices)
    totals = sums if totals is None else jax.tree.map(jnp.add, totals, sums)
    if first is None:
      real = int(mask.sum())
      first = (x[:real], None if recon is None else recon[:real])
    if iwae_step is not None and indices[0] < iwae_limit:
      iwae_mask = mask * (indices < iwae_limit)
      iwae_total += iwae_step(state, batch, sharding.shard_batch(iwae_mask[rows], exp.mesh),
                              indices_on_devices)
      iwae_count += iwae_mask.sum()
  totals = jax.device_get(totals)
  count = totals.pop("count")
  code_counts = totals.pop("code_counts", None)
  metrics = {k: v / count for k, v in totals.items()}
  if code_counts is not None:
    metrics["perplexity"] = quantizer.perplexity_from_counts(code_counts)
    metrics["codebook_usage"] = quantizer.usage_from_counts(code_counts)
  if iwae_step is not None:
    metrics["nll_iwae"] = float(iwae_total) / iwae_count
    model = exp.model(state)
    metrics["bits_per_dim_iwae"] = float(model.bits_per_dim(jnp.float32(metrics["nll_iwae"])))
  return {k: float(v) for k, v in metrics.items()}, first, code_counts


def write_images(exp: Experiment, state: TrainState, step: int, workdir: str, first,
                 code_counts=None, writer: MetricsWriter | None = None) -> None:
  """Every process takes part (the arrays span them all); process 0 writes the PNGs (and
  gives them to TensorBoard)."""
  writes = jax.process_index() == 0
  if code_counts is not None and writes:
    images.save_usage_histogram(os.path.join(workdir, "images", f"code_usage_{step:06d}.png"),
                                code_counts, title=f"code usage on the test set, step {step}")
  n = exp.config.num_image_grid
  if first[1] is None:  # a prior: its samples come from jaxvq.sample
    return
  x, recon = (np.asarray(a)[:n] for a in sharding.to_host(first))
  columns = int(np.ceil(np.sqrt(n)))
  if writes:
    grid = images.save_png(os.path.join(workdir, "images", f"reconstructions_{step:06d}.png"),
                           images.interleave_rows(x, recon, columns), columns)
    if writer is not None:
      writer.image("test/reconstructions", step, grid)
  samples = exp.model(state).generate(
      state.key(_SAMPLE_KEY_TAG), n, sharding.replicate(x, exp.mesh))
  if samples is not None and writes:
    grid = images.save_png(os.path.join(workdir, "images", f"samples_{step:06d}.png"),
                           np.asarray(samples), columns)
    if writer is not None:
      writer.image("samples", step, grid)


def _report(message: str) -> None:
  if jax.process_index() == 0:
    print(message, flush=True)


class _Progress:
  """A tqdm bar on a terminal; nothing otherwise."""

  def __init__(self, start: int, total: int):
    self.bar = None
    if sys.stderr.isatty() and jax.process_index() == 0:
      from tqdm import tqdm  # pylint: disable=g-import-not-at-top
      self.bar = tqdm(total=total, initial=start, unit="step", dynamic_ncols=True)

  def update(self, n=1, **postfix):
    if self.bar is not None:
      if postfix:
        self.bar.set_postfix(postfix, refresh=False)
      self.bar.update(n)

  def close(self):
    if self.bar is not None:
      self.bar.close()


# Config keys that may change when a run resumes; any other change is a different run.
RESUMABLE_KEYS = ("num_train_steps", "log_every_steps", "eval_every_steps", "checkpoint_every_steps",
                  "keep_checkpoints", "eval_batch_size", "num_eval_examples", "num_image_grid",
                  "num_devices", "data_dir", "overwrite")
_RUN_FILES = ("checkpoints", "metrics.jsonl", "images", codes.CODES_DIR, "config.json")


def _flatten(tree: dict, prefix: str = "") -> dict:
  flat = {}
  for key, value in tree.items():
    if isinstance(value, dict):
      flat.update(_flatten(value, f"{prefix}{key}."))
    else:
      flat[prefix + key] = value
  return flat


def config_differences(saved: dict, config: ml_collections.ConfigDict) -> list:
  """'key: saved -> new' for each key, besides RESUMABLE_KEYS, where `config` differs from `saved`.

  A key the saved config lacks (added by a later jaxvq) counts as its default in
  jaxvq/config_base.py, the behaviour the run had; keys that setup() adds are compared
  only when saved.
  """
  defaults = _flatten(json.loads(config_base.get_base_config().to_json_best_effort()))
  old, new = _flatten(saved), _flatten(json.loads(config.to_json_best_effort()))
  old = {**{k: v for k, v in defaults.items() if k in new}, **old}
  resumable = set(RESUMABLE_KEYS)
  if new.get("learning_rate_schedule", "constant") != "constant":
    resumable.discard("num_train_steps")   # the schedule decays over the run's length
  return [f"{k}: {old[k]!r} -> {new.get(k, '(none)')!r}"
          for k in sorted(old) if k not in resumable and old[k] != new.get(k)]


def claim_workdir(config: ml_collections.ConfigDict, workdir: str) -> None:
  """Refuses a workdir holding a run of another config; with config.overwrite, clears it instead."""
  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    if checkpoint.latest_step(os.path.join(workdir, "checkpoints")) is not None:
      raise RunError(f"{workdir} holds checkpoints but no config.json, so nothing says which "
                     f"run they are: use a new --workdir, or delete {workdir}/checkpoints")
    return
  saved = load_config(workdir).to_dict()
  differences = config_differences(saved, config)
  if not differences:
    return
  if not config.get("overwrite"):
    name = saved.get("model", {}).get("name")
    what = ("run of a different config" if name == config.model.name else
            f"run of model {name!r}, not {config.model.name!r}")
    shown = "; ".join(differences[:4]) + ("; ..." if len(differences) > 4 else "")
    raise RunError(f"{workdir} holds a {what} ({shown}): use a new --workdir, or add "
                   f"--config.overwrite=True to delete that run and start over")
  distributed.barrier("jaxvq: every process has read the old config")
  if jax.process_index() == 0:
    # Each piece is first renamed away, the checkpoints first and config.json
    # last, so that a crash midway never leaves a checkpoint that a rerun would load.
    trash = os.path.join(workdir, ".overwritten")
    os.makedirs(trash, exist_ok=True)
    names = [n for n in os.listdir(workdir) if n.startswith("events.out.tfevents.")]
    names = list(_RUN_FILES[:-1]) + names + [_RUN_FILES[-1]]   # config.json last
    for name in names:
      if os.path.exists(os.path.join(workdir, name)):
        os.replace(os.path.join(workdir, name), os.path.join(trash, f"{name}.{time.time_ns()}"))
    shutil.rmtree(trash)


def _write_config(config: ml_collections.ConfigDict, workdir: str) -> None:
  if jax.process_index() == 0:  # written whole or not at all
    tmp = os.path.join(workdir, "config.json.tmp")
    with open(tmp, "w") as f:
      f.write(config.to_json_best_effort(indent=2, sort_keys=True))
    os.replace(tmp, os.path.join(workdir, "config.json"))


class _SigtermFlag:
  """Notes a SIGTERM (how TPU VMs are preempted) so that the loop can save and stop."""

  def __init__(self):
    self.received, self.installed, self.previous = False, False, None

  def __enter__(self):
    if threading.current_thread() is threading.main_thread():
      self.previous = signal.signal(signal.SIGTERM, self._handle)
      self.installed = True
    return self

  def _handle(self, signum, frame):
    del signum, frame
    self.received = True

  def __exit__(self, *exc):
    if self.installed:  # None: a handler not set from Python, i.e. the default
      signal.signal(signal.SIGTERM, signal.SIG_DFL if self.previous is None else self.previous)


@jax.jit
def _accumulate(interval, metrics, step):
  """Adds a step's metrics to the interval's sums; notes the first step each went NaN or Inf."""
  newly_bad = jax.tree.map(lambda first, v: (first < 0) & ~jnp.isfinite(v),
                           interval["bad_step"], metrics)
  return {"sum": jax.tree.map(jnp.add, interval["sum"], metrics),
          "bad_step": jax.tree.map(lambda first, bad: jnp.where(bad, step, first),
                                   interval["bad_step"], newly_bad),
          "bad_value": jax.tree.map(lambda old, v, bad: jnp.where(bad, v.astype(jnp.float32), old),
                                    interval["bad_value"], metrics, newly_bad)}


def _new_interval(metrics):
  return {"sum": jax.tree.map(lambda m: jnp.zeros(m.shape, m.dtype), metrics),
          "bad_step": jax.tree.map(lambda m: jnp.full(m.shape, -1, jnp.int32), metrics),
          "bad_value": jax.tree.map(lambda m: jnp.zeros(m.shape, jnp.float32), metrics)}


@jax.jit
def _all_finite(params) -> jax.Array:
  return jnp.all(jnp.stack([jnp.all(jnp.isfinite(p)) for p in jax.tree.leaves(params)]))


def _check_finite(interval, state: TrainState, checkpointer: Checkpointer, workdir: str) -> None:
  """Stops training at a NaN or Inf metric or parameter, keeping the checkpoints saved before it."""
  bad_step = jax.device_get(interval["bad_step"])
  bad = {k: int(s) for k, s in bad_step.items() if s >= 0}
  if bad:
    step = min(bad.values())
    values = jax.device_get(interval["bad_value"])
    what = ", ".join(f"{k} = {float(values[k])}" for k in sorted(bad) if bad[k] == step)
  elif not _all_finite(state.params):  # finite losses, but the update overflowed
    step, what = int(state.step), "a parameter became NaN or Inf in its update"
  else:
    return
  checkpointer.wait()
  last = checkpointer.latest_step()
  kept = (f"the last good checkpoint, of step {last}, is kept in {workdir}/checkpoints"
          if last is not None else "no checkpoint was saved before it")
  raise TrainingDiverged(f"training diverged at step {step}: {what}; {kept}. Try a lower "
                         f"--config.learning_rate in a new --workdir")


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Trains `config` in `workdir`, resuming from its latest checkpoint; returns the final test metrics.

  Raises RunError for a workdir that holds a run of another config (unless
  config.overwrite), TrainingDiverged when a train metric or a parameter
  becomes NaN or Inf, and Preempted after saving a checkpoint when SIGTERM
  arrives (from the start: one received while setting up is acted on after
  the first step).
  """
  if config.get("vqvae_workdir"):  # so that the run can be restored from any directory
    config = ml_collections.ConfigDict(config.to_dict())
    config.vqvae_workdir = os.path.abspath(config.vqvae_workdir)
  with _SigtermFlag() as sigterm:
    exp = setup(config)
    claim_workdir(exp.config, workdir)
    os.makedirs(workdir, exist_ok=True)
    distributed.barrier("jaxvq: workdir claimed")
    checkpointer = Checkpointer(os.path.join(workdir, "checkpoints"), exp.config.keep_checkpoints)
    try:
      return _train_loop(exp, workdir, checkpointer, sigterm)
    finally:
      checkpointer.close()


def _train_loop(exp: Experiment, workdir: str, checkpointer: Checkpointer, sigterm) -> dict:
  config, state = exp.config, exp.initial_state
  writer = MetricsWriter(workdir)
  latest = checkpointer.latest_step()
  if latest is not None:
    state = checkpointer.restore(latest, state)
    _report(f"resumed from the checkpoint of step {latest} in {workdir}")
  else:
    state = initialize_from_data(exp, state)
  writer.truncate_after(latest or 0)  # rows logged after the checkpoint are logged again
  _write_config(config, workdir)

  train_step, eval_step = make_train_step(exp), make_eval_step(exp)
  iwae_samples = config.model.get("importance_samples", 0) if config.model.name == "vae" else 0
  start = int(state.step)
  progress = _Progress(start, config.num_train_steps)
  interval, interval_steps, interval_start = None, 0, time.perf_counter()
  test_metrics = {}
  try:
    for step in range(start + 1, config.num_train_steps + 1):
      state, metrics = train_step(state, train_batch(exp, step - 1))
      interval = _accumulate(interval or _new_interval(metrics), metrics, step)
      interval_steps += 1
      last = step == config.num_train_steps
      log = step % config.log_every_steps == 0 or last
      evaluate_now = step % config.eval_every_steps == 0 or last
      save = step % config.checkpoint_every_steps == 0 or last
      if jax.process_count() == 1:
        stop = sigterm.received
      else:  # processes may get SIGTERM at different steps: they agree at log/eval/save steps
        stop = (log or evaluate_now or save) and distributed.any_process(sigterm.received)
      if log or evaluate_now or save or stop:
        _check_finite(interval, state, checkpointer, workdir)
      if log:
        # Counts ("num_...") are summed over the interval, the rest averaged.
        means = {k: float(v) if k.startswith("num_") else float(v) / interval_steps
                 for k, v in jax.device_get(interval["sum"]).items()}
        elapsed = time.perf_counter() - interval_start
        means["images_per_sec"] = interval_steps * config.batch_size / elapsed
        row = writer.write(step, "train", means)
        if progress.bar is None:
          _report(json.dumps(row))
        progress.update(0, loss=f"{means['loss']:.4f}", img_s=f"{means['images_per_sec']:.0f}")
        interval, interval_steps = None, 0
        interval_start = time.perf_counter()
      progress.update(1)
      if stop:  # the grace period is short: save before anything else
        checkpointer.save(step, state)
        checkpointer.wait()
        raise Preempted(step, workdir)
      if evaluate_now:
        iwae_step = make_iwae_step(exp, iwae_samples) if (last and iwae_samples) else None
        test_metrics, first, code_counts = evaluate(exp, state, eval_step, iwae_step)
        row = writer.write(step, "test", test_metrics)
        _report(json.dumps(row))
        write_images(exp, state, step, workdir, first, code_counts, writer)
        interval_start = time.perf_counter()  # evaluation time is not training throughput
      if save:
        checkpointer.save(step, state)
  finally:
    progress.close()
    writer.close()
  if not test_metrics:  # the run was already complete: its last evaluation
    tests = [r for r in writer.read() if r["split"] == "test"]
    test_metrics = {k: v for k, v in tests[-1].items() if k not in ("step", "split")} if tests else {}
  return test_metrics
