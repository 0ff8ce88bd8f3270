"""The input pipeline's throughput: images/s read, decoded, augmented and batched by
jaxvq/data/pipeline.py (no model), per number of worker processes, beside the train
step's images/s on the same batch.

  jaxvq bench --config=configs/NAME.py --input_pipeline --workers=0,1,2

The pipeline reads the config's own data (a folder is decoded from its files) with
its config's prefetch and augmentation, this process's rows of each global batch, as
training does. Its first batches (`warmup`, at least one per worker) are not timed: they
include starting the workers. The step is timed as `jaxvq bench` times it, on random
pixels of the config's shape.
"""
from __future__ import annotations

import time

from jaxvq.bench.step import StepTimer
from jaxvq.data import pipeline
from jaxvq.errors import ConfigError
from jaxvq.train.run import load_data


def images_per_second(step_batch: pipeline.StepBatch, workers: int, prefetch: int,
                      num_batches: int, warmup: int) -> tuple:
  """(images/s over `num_batches` batches after the warm-up, seconds to the first batch)."""
  start = time.perf_counter()
  warmup = max(warmup, workers, 1)
  with pipeline.TrainBatches(step_batch, 0, warmup + num_batches, workers=workers,
                             prefetch=prefetch) as batches:
    next(batches)
    startup = time.perf_counter() - start
    for _ in range(warmup - 1):
      next(batches)
    timed_start = time.perf_counter()
    images = sum(len(inputs) for inputs, _ in batches)
    seconds = time.perf_counter() - timed_start
  return images / seconds, startup


def throughput_rows(config, worker_counts, num_batches: int, warmup: int,
                    step_images_per_s: float | None = None) -> list:
  """One row per worker count: the pipeline's images/s, and its ratio to the step's
  (`step_images_per_s`; None: timed here, `num_batches` steps after `warmup`)."""
  if num_batches < 1 or any(w < 0 for w in worker_counts):
    raise ConfigError(f"--steps must be at least 1 and --workers at least 0; got "
                      f"{num_batches} and {list(worker_counts)}")
  if step_images_per_s is None:
    step_images_per_s = config.batch_size / StepTimer(config).time(num_batches, warmup)
  dataset = load_data(config)
  step_batch = pipeline.StepBatch.of(dataset.train, config)
  rows = []
  for workers in worker_counts:
    rate, startup = images_per_second(step_batch, workers, config.data_prefetch, num_batches,
                                      warmup)
    row = {"input_pipeline": config.dataset, "image_shape": list(dataset.image_shape),
           "batch": config.batch_size, "rows_per_process": len(step_batch(0)["inputs"]),
           "workers": workers, "prefetch": config.data_prefetch,
           "augment": step_batch.augmentation.enabled, "timed_batches": num_batches,
           "startup_s": round(startup, 2), "images_per_s": round(rate, 1)}
    if step_images_per_s:   # 0: not timed
      row["step_images_per_s"] = round(step_images_per_s, 1)
      row["pipeline_over_step"] = round(rate / step_images_per_s, 2)
    rows.append(row)
  return rows
