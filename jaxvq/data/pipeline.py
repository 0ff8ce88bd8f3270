"""The training batches as a Grain pipeline: each step's rows read, decoded and augmented
ahead of the step, in threads or in worker processes.

  grain.MapDataset.range(start_step, num_train_steps)   the step numbers
    .map(StepBatch(...))        step -> this process's rows of the step's global batch
                                (batches.train_indices), read from the source (decoded and
                                resized for a folder or TFDS), augmented if the config says so
    .to_iter_dataset(ReadOptions(num_threads=prefetch, prefetch_buffer_size=prefetch))
    .mp_prefetch(MultiprocessingOptions(num_workers=data_workers))   when data_workers > 0

Every element is a pure function of (seed, step, process index and count): the
index sampler decides which examples a step sees, and the augmentation's draws
come from (seed, step, row of the global batch). So a run resumed at step s
reads exactly the batches an uninterrupted run would have, there is no iterator
state to checkpoint, and the processes of a multi-host run read disjoint rows
of one global batch. Grain keeps the order of the steps whatever the number of
workers (each worker maps every N-th step; they are read in turn).
"""
from __future__ import annotations

import dataclasses

import grain
import numpy as np
from absl import flags

from jaxvq.data import batches, sources
from jaxvq.errors import ConfigError
from jaxvq.runtime import distributed

AUGMENT_TAG = 0x617567   # seeds the augmentation's draws apart from the data order's


def process_indices(num_examples: int, batch_size: int, seed: int, step: int,
                    process_index: int, process_count: int) -> np.ndarray:
  """The training examples that process `process_index` of `process_count` reads at `step`:
  its block of rows of the global batch (distributed.process_rows)."""
  indices = batches.train_indices(num_examples, batch_size, seed, step)
  return indices[distributed.process_rows(len(indices), process_index, process_count)]


@dataclasses.dataclass(frozen=True)
class Augmentation:
  """Random left-right flips and pad-and-crop, drawn from (seed, step, row of the batch).

  The crop pads each image by `crop_padding` pixels per side, reflecting its edges
  (no black borders for an autoencoder to reconstruct), and cuts an image of the
  original size out of it at a uniform offset in [0, 2 * crop_padding] per axis.
  """
  flip: bool = False
  crop_padding: int = 0

  @classmethod
  def of(cls, config, image_shape) -> "Augmentation":
    """The config's augmentation; a ConfigError for one the images cannot take."""
    augmentation = cls(bool(config.augment_flip), int(config.augment_crop_padding))
    if augmentation.enabled and len(image_shape) != 3:
      raise ConfigError(f"augment_flip and augment_crop_padding act on images [H, W, C]; this "
                        f"dataset serves arrays of shape {tuple(image_shape)} (a prior's codes?)")
    if augmentation.crop_padding >= min(image_shape[:2], default=0) > 0:
      raise ConfigError(f"augment_crop_padding={augmentation.crop_padding} must be below the "
                        f"images' height and width {tuple(image_shape[:2])}")
    return augmentation

  @property
  def enabled(self) -> bool:
    return self.flip or self.crop_padding > 0

  def draws(self, seed: int, step: int, batch_size: int):
    """(flips [B] bool, offsets [B, 2] int) for the rows of step `step`'s global batch."""
    rng = np.random.default_rng([seed, AUGMENT_TAG, step])
    flips = rng.random(batch_size) < 0.5
    offsets = rng.integers(0, 2 * self.crop_padding + 1, (batch_size, 2))
    return flips & self.flip, offsets

  def apply(self, images: np.ndarray, flips: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """images [n, H, W, C] uint8 with each row's draws -> [n, H, W, C] uint8."""
    # NumPy, not dm_pix: its flip is jnp.flip and its crop (random_crop) draws the offset
    # from a JAX key, so the crop could not keep these (seed, step, row) draws, and this runs
    # in Grain's threads and worker processes on the host, where JAX would copy every batch
    # to the accelerator and back before the train step takes it.
    n, h, w, _ = images.shape
    p = self.crop_padding
    if p:
      padded = np.pad(images, ((0, 0), (p, p), (p, p), (0, 0)), mode="reflect")
      images = np.stack([padded[i, dy:dy + h, dx:dx + w] for i, (dy, dx) in enumerate(offsets)])
    return np.where(flips[:, None, None, None], images[:, :, ::-1], images) if n else images


@dataclasses.dataclass(frozen=True)
class StepBatch:
  """step -> this process's rows of that step's training batch, read and augmented.

  The Grain map transform; it runs in the worker processes, so it holds only what
  pickles (the source, numbers).
  """
  source: object             # a sources.Source of the training split
  batch_size: int            # the global batch
  seed: int
  augmentation: Augmentation = Augmentation()
  process_index: int = 0
  process_count: int = 1

  @classmethod
  def of(cls, source, config, process_index: int | None = None,
         process_count: int | None = None) -> "StepBatch":
    """The config's batches of `source` for a process (default: this one)."""
    import jax  # pylint: disable=g-import-not-at-top
    return cls(source, config.batch_size, config.seed,
               Augmentation.of(config, source.image_shape),
               jax.process_index() if process_index is None else process_index,
               jax.process_count() if process_count is None else process_count)

  def __call__(self, step) -> dict:
    """{"step", "inputs" [b, ...] uint8, "labels" [b] int32, "skipped": paths of files skipped
    to make them}, b = batch_size / process_count."""
    step = int(step)
    indices = process_indices(len(self.source), self.batch_size, self.seed, step,
                              self.process_index, self.process_count)
    read = getattr(self.source, "read", None)   # sources that can skip a file say which
    inputs, skipped = read(indices) if read else (self.source.inputs(indices), ())
    if self.augmentation.enabled:
      rows = distributed.process_rows(self.batch_size, self.process_index, self.process_count)
      flips, offsets = self.augmentation.draws(self.seed, step, self.batch_size)
      inputs = self.augmentation.apply(inputs, flips[rows], offsets[rows])
    return {"step": step, "inputs": inputs, "labels": self.source.labels(indices),
            "skipped": skipped}


class TrainBatches:
  """The (inputs, labels) of steps start_step, start_step + 1, ..., num_steps - 1, through
  Grain with `workers` processes (0: threads of this one) and `prefetch` batches ahead.

  `place` maps each host batch to what the train step takes (e.g. sharding.shard_batch).
  `skipped_files` collects the corrupt files skipped so far (corrupt_images="skip").
  Close it (or use it as a context manager) to end the worker processes.
  """

  def __init__(self, step_batch: StepBatch, start_step: int, num_steps: int, *,
               workers: int = 0, prefetch: int = 2, place=lambda batch: batch):
    dataset = grain.MapDataset.range(start_step, num_steps).map(step_batch)
    # One thread per batch ahead: decoding (PIL) releases the GIL.
    dataset = dataset.to_iter_dataset(grain.ReadOptions(num_threads=prefetch,
                                                        prefetch_buffer_size=prefetch))
    if workers:
      if not flags.FLAGS.is_parsed():   # Grain's workers read its absl flags: their defaults
        flags.FLAGS.mark_as_parsed()
      dataset = dataset.mp_prefetch(grain.MultiprocessingOptions(
          num_workers=workers, per_worker_buffer_size=max(1, prefetch)))
    self._iterator = iter(dataset)
    self._next_step = start_step
    self._place = place
    self.skipped_files = set()

  def __iter__(self):
    return self

  def __next__(self):
    element = next(self._iterator)
    if element["step"] != self._next_step:   # Grain's order is part of the contract
      raise RuntimeError(f"the input pipeline gave step {element['step']}'s batch for step "
                         f"{self._next_step}")
    self._next_step += 1
    sources.warn_skipped([f for f in element["skipped"] if f not in self.skipped_files])
    self.skipped_files.update(element["skipped"])
    return self._place((element["inputs"], element["labels"]))

  def close(self) -> None:
    close = getattr(self._iterator, "close", None)
    if close is not None:
      close()

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()
