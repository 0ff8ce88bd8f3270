"""The compiled steps: `train_step(state, (inputs, labels)) -> (state, metrics)`, the
evaluation step, the final-evaluation step, and the initialisation from data.

Each is a pure function of explicit state, compiled once with `jax.jit`.
Randomness comes from one key: training step s uses fold_in(key, s);
evaluation uses fixed keys, so every evaluation sees the same draws.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from jaxvq.data import batches, pipeline
from jaxvq.models.base import CodeUsage
from jaxvq.runtime import sharding, xla_options
from jaxvq.train.experiment import EVAL_KEY_TAG, INIT_KEY_TAG, Experiment, TrainState


def train_batch(exp: Experiment, step: int):
  """The (inputs, labels) of training step `step` (0-based), split over the devices, read
  here and now (training reads them ahead, through `train_batches`).

  Each process loads only its own rows of the global batch.
  """
  batch = pipeline.StepBatch.of(exp.dataset.train, exp.config)(step)
  return sharding.shard_batch((batch["inputs"], batch["labels"]), exp.mesh)


def train_batches(exp: Experiment, start_step: int) -> pipeline.TrainBatches:
  """The batches of steps start_step, ..., num_train_steps - 1 (0-based), as `train_batch`
  gives them, read ahead by the input pipeline (config.data_workers, config.data_prefetch)."""
  return pipeline.TrainBatches(
      pipeline.StepBatch.of(exp.dataset.train, exp.config), start_step,
      exp.config.num_train_steps, workers=exp.config.data_workers,
      prefetch=exp.config.data_prefetch, place=lambda b: sharding.shard_batch(b, exp.mesh))


def make_train_step(exp: Experiment, compiler_options: dict | None = None):
  """The jitted train step; `compiler_options` (XLA's) default to jaxvq's (xla_options)."""

  def train_step(state: TrainState, batch):
    inputs, labels = batch
    data_key, model_key, update_key = jax.random.split(state.key(state.step), 3)
    x = exp.dataset.preprocess(inputs, data_key)

    def loss_fn(params):
      out = nnx.merge(exp.graphdef, params, state.model_state)(x, model_key, labels,
                                                               training=True)
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


def make_initialize_step(exp: Experiment):
  """(state, the first training batches [n, B, ...]) -> state, the model initialised from them
  (`initialize_from_data`)."""

  def initialize(state, inputs):
    data_key, model_key = jax.random.split(state.key(INIT_KEY_TAG))
    model = exp.model(state)
    model.initialize_from_data(exp.dataset.preprocess(inputs, data_key), model_key)
    _, params, model_state = nnx.split(model, nnx.Param, ...)
    return state.replace(params=params, model_state=model_state)

  return xla_options.jit(initialize, exp.mesh)


def initialize_from_data(exp: Experiment, state: TrainState) -> TrainState:
  """Gives the model the first training batches before step 1 (e.g. k-means of its codebook)."""
  num_batches = exp.model(state).num_initialization_batches
  if not num_batches:
    return state
  first = np.stack([exp.dataset.train.inputs(batches.train_indices(
      len(exp.dataset.train), exp.config.batch_size, exp.config.seed, s))
                    for s in range(num_batches)])
  return make_initialize_step(exp)(state, sharding.replicate(first, exp.mesh))


def eval_inputs(exp: Experiment, state: TrainState, inputs, indices):
  """The preprocessed test examples `indices` and a model key, the same at every evaluation.

  Each test example is binarized with a key of its own index, so the binarized
  test set does not depend on the evaluation batch size.
  """
  key = state.key(EVAL_KEY_TAG)
  example_keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(indices)
  x = jax.vmap(lambda k, b: exp.dataset.preprocess(b[None], k)[0])(example_keys, inputs)
  return x, jax.random.fold_in(key, indices[0])


def make_eval_step(exp: Experiment):
  """(state, batch, mask [B], indices [B]) -> (masked sums of the per-example metrics and,
  for models with CodeUsage, the code counts; the inputs; the reconstructions)."""

  def eval_step(state: TrainState, batch, mask: jax.Array, indices: jax.Array):
    inputs, labels = batch
    x, model_key = eval_inputs(exp, state, inputs, indices)
    model = exp.model(state)
    out = model(x, model_key, labels)
    sums = {k: jnp.sum(v * mask) for k, v in out.per_example.items()}
    sums["count"] = jnp.sum(mask)
    if isinstance(model, CodeUsage):
      sums["code_counts"] = model.code_counts(out, mask)                          # [S, K]
    return sums, x, out.reconstruction

  return xla_options.jit(eval_step, exp.mesh)


def make_final_metrics_step(exp: Experiment):
  """(state, batch, mask, indices) -> masked sums of the model's `final_metrics`."""

  def final_metrics_step(state, batch, mask, indices):
    x, model_key = eval_inputs(exp, state, batch[0], indices)
    metrics = exp.model(state).final_metrics(x, jax.random.fold_in(model_key, 1))
    return {k: jnp.sum(v * mask) for k, v in metrics.items()}

  return xla_options.jit(final_metrics_step, exp.mesh)
