"""Which examples each step sees: a pure function of (seed, step).

Training batches walk through a fresh permutation of the training set every
epoch (drop-remainder), so a run resumed at step s sees exactly the batches an
uninterrupted run would have seen. Evaluation batches cover the test split in
order, the last one padded and masked.
"""
from __future__ import annotations

import functools

import numpy as np

from jaxvq.errors import ConfigError


@functools.lru_cache(maxsize=2)
def _epoch_permutation(num_examples: int, seed: int, epoch: int) -> np.ndarray:
  return np.random.default_rng([seed, epoch]).permutation(num_examples)


def check_batch_size(batch_size: int, num_examples: int) -> None:
  if not 0 < batch_size <= num_examples:
    raise ConfigError(f"batch_size={batch_size} exceeds the {num_examples} training examples"
                      if batch_size > 0 else f"batch_size must be positive; got {batch_size}")


def train_indices(num_examples: int, batch_size: int, seed: int, step: int) -> np.ndarray:
  """Indices of the training examples of global step `step`: [batch_size]."""
  check_batch_size(batch_size, num_examples)
  steps_per_epoch = num_examples // batch_size
  epoch, position = divmod(step, steps_per_epoch)
  return _epoch_permutation(num_examples, seed, epoch)[position * batch_size:(position + 1) * batch_size]


def eval_batches(num_examples: int, batch_size: int):
  """Yields (indices [batch_size], mask [batch_size]) covering examples 0..num_examples-1."""
  for start in range(0, num_examples, batch_size):
    indices = np.arange(start, start + batch_size)
    mask = indices < num_examples
    yield np.where(mask, indices, 0), mask.astype(np.float32)
