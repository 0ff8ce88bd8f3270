"""Evaluation over the test split, and the image grids written at each evaluation."""
from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np

from jaxvq import figures
from jaxvq.data import batches
from jaxvq.ops import vq
from jaxvq.runtime import distributed, sharding
from jaxvq.train.experiment import SAMPLE_KEY_TAG, Experiment, TrainState
from jaxvq.train.metrics_writer import MetricsWriter


def eval_batch_size(exp: Experiment) -> int:
  """config.eval_batch_size rounded up to a multiple of the device count (padding is masked)."""
  return sharding.round_up_to_devices(exp.config.eval_batch_size, exp.mesh)


def num_eval_examples(exp: Experiment) -> int:
  num = len(exp.dataset.test)
  return min(num, exp.config.num_eval_examples) if exp.config.num_eval_examples else num


def evaluate(exp: Experiment, state: TrainState, eval_step, final_metrics_step=None):
  """Test metrics averaged over the test split, the first batch's images, the code counts.

  With `final_metrics_step` (the last evaluation), the model's `final_metrics` too, over
  its first `final_metrics_examples` test examples.
  """
  num = num_eval_examples(exp)
  final_limit = exp.model(state).final_metrics_examples(num) if final_metrics_step else 0
  totals, first, final_totals, final_count = None, None, None, 0.0
  for indices, mask in batches.eval_batches(num, eval_batch_size(exp)):
    rows = distributed.process_rows(len(indices))   # this process loads only its rows
    batch, mask_on_devices, indices_on_devices = sharding.shard_batch(
        ((exp.dataset.test.inputs(indices[rows]), exp.dataset.test.labels(indices[rows])),
         mask[rows], indices[rows].astype(np.int32)), exp.mesh)
    sums, x, recon = eval_step(state, batch, mask_on_devices, indices_on_devices)
    totals = sums if totals is None else jax.tree.map(jnp.add, totals, sums)
    if first is None:
      real = int(mask.sum())
      first = (x[:real], None if recon is None else recon[:real])
    if indices[0] < final_limit:
      final_mask = mask * (indices < final_limit)
      final_sums = final_metrics_step(
          state, batch, sharding.shard_batch(final_mask[rows], exp.mesh), indices_on_devices)
      final_totals = final_sums if final_totals is None else jax.tree.map(
          jnp.add, final_totals, final_sums)
      final_count += final_mask.sum()
  totals = jax.device_get(totals)
  count = totals.pop("count")
  code_counts = totals.pop("code_counts", None)
  metrics = {k: v / count for k, v in totals.items()}
  if code_counts is not None:   # [S, K]: one row, or one per residual stage
    perplexity = [float(vq.perplexity_from_counts(c)) for c in code_counts]
    usage = [float(vq.usage_from_counts(c)) for c in code_counts]
    metrics["perplexity"], metrics["codebook_usage"] = np.mean(perplexity), np.mean(usage)
    if len(code_counts) > 1:
      metrics.update({f"codebook_usage_stage{q + 1}": u for q, u in enumerate(usage)})
  if final_totals is not None:
    metrics.update({k: float(v) / final_count for k, v in jax.device_get(final_totals).items()})
  return {k: float(v) for k, v in metrics.items()}, first, code_counts


def write_images(exp: Experiment, state: TrainState, step: int, workdir: str, first,
                 code_counts=None, writer: MetricsWriter | None = None) -> None:
  """The reconstructions, samples and code-usage histogram of an evaluation, as PNGs.

  Every process takes part (the arrays span them all); process 0 writes the PNGs
  (and gives them to TensorBoard).
  """
  writes = distributed.is_main_process()
  if code_counts is not None and writes:   # the stages of a residual VQ side by side
    figures.save_usage_histogram(os.path.join(workdir, "images", f"code_usage_{step:06d}.png"),
                                 np.reshape(code_counts, -1),
                                 title=f"code usage on the test set, step {step}")
  n = exp.config.num_image_grid
  if first[1] is None:  # a prior: its samples come from `jaxvq sample`
    return
  x, recon = (np.asarray(a)[:n] for a in sharding.to_host(first))
  columns = int(np.ceil(np.sqrt(n)))
  if writes:
    grid = figures.save_png(os.path.join(workdir, "images", f"reconstructions_{step:06d}.png"),
                            figures.interleave_rows(x, recon, columns), columns)
    if writer is not None:
      writer.image("test/reconstructions", step, grid)
  samples = exp.model(state).generate(
      state.key(SAMPLE_KEY_TAG), n, sharding.replicate(x, exp.mesh))
  if samples is not None and writes:
    grid = figures.save_png(os.path.join(workdir, "images", f"samples_{step:06d}.png"),
                            np.asarray(samples), columns)
    if writer is not None:
      writer.image("samples", step, grid)
