"""New images from a PixelCNN prior and its VQ-VAE's decoder.

  python -m jaxvq.sample --workdir=PRIOR_DIR --num_samples=64 [--label=3] \\
      [--temperature=1.0] [--seed=0] --output=samples.png

samples code grids from the prior (one compiled loop over the positions),
decodes them with the VQ-VAE checkpoint the codes were made with, and writes
the PNG grid and the codes (OUTPUT with .npy). The same seed gives the same
images. A class-conditional prior samples `--label`, or without it every
class in turn (one class per column). `--benchmark` instead times the compiled loop against a Python loop
of one jitted forward pass per position and prints one JSON line.
"""
import json
import os
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags

from jaxvq import images, trainer

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "Workdir of a trained PixelCNN prior.")
flags.DEFINE_integer("num_samples", 64, "How many images.")
flags.DEFINE_integer("label", None, "Class to sample (class-conditional priors only).")
flags.DEFINE_float("temperature", 1.0, "Softmax temperature of the prior's logits.")
flags.DEFINE_integer("seed", 0, "Random seed.")
flags.DEFINE_string("output", "samples.png", "PNG file of the sample grid.")
flags.DEFINE_bool("benchmark", False, "Time compiled vs naive sampling instead.")
flags.mark_flags_as_required(["workdir"])


class SampleError(ValueError):
  pass


def load_prior(workdir: str):
  exp, state = trainer.restore_run(workdir)
  if exp.config.model.name != "pixelcnn":
    raise SampleError(f"{workdir} holds a {exp.config.model.name} run, not a PixelCNN prior")
  return exp, state


def check_request(prior, num_samples: int, label):
  if num_samples < 1:
    raise SampleError(f"--num_samples must be at least 1, got {num_samples}")
  if label is not None:
    if not prior.num_classes:
      raise SampleError("this prior is not class-conditional: drop --label "
                        "(or train one with --config.model.class_conditional=True)")
    if not 0 <= label < prior.num_classes:
      raise SampleError(f"--label must be in [0, {prior.num_classes}), got {label}")


def sample_labels(prior, num_samples: int, label=None):
  """The class of each sample: `label`, or for a class-conditional prior every class in turn."""
  if not prior.num_classes:
    return None
  if label is None:
    return jnp.arange(num_samples, dtype=jnp.int32) % prior.num_classes
  return jnp.full((num_samples,), label, jnp.int32)


def sample_codes(exp, state, key, num_samples: int, label=None, temperature: float = 1.0):
  """[num_samples, h, w] int32 code grids from the prior in one compiled program."""
  labels = sample_labels(exp.model(state), num_samples, label)
  fn = jax.jit(lambda state, key, labels: exp.model(state).sample(key, num_samples, labels,
                                                                 temperature))
  return fn(state, key, labels)


def sample_codes_without_cache(exp, state, key, num_samples: int, label=None, temperature=1.0):
  """The same samples by a compiled loop of one whole forward pass per position."""
  labels = sample_labels(exp.model(state), num_samples, label)
  fn = jax.jit(lambda state, key, labels: exp.model(state).sample_without_cache(
      key, num_samples, labels, temperature))
  return fn(state, key, labels)


def sample_codes_naively(exp, state, key, num_samples: int, label=None, temperature=1.0):
  """The same samples by a Python loop of one jitted forward pass per position."""
  prior = exp.model(state)
  height, width = prior.grid_shape
  labels = sample_labels(prior, num_samples, label)
  forward = jax.jit(lambda state, codes, labels: exp.model(state).logits(codes, labels))
  codes = jnp.zeros((num_samples, height, width), jnp.int32)
  for position in range(height * width):
    row, col = divmod(position, width)
    logits = forward(state, codes, labels)[:, row, col]
    chosen = jax.random.categorical(jax.random.fold_in(key, position), logits / temperature)
    codes = codes.at[:, row, col].set(chosen)
  return codes


def decode(vq_exp, vq_state, codes):
  return jax.jit(lambda state, codes: vq_exp.model(state).decode_from_indices(codes))(
      vq_state, codes)


def benchmark(exp, state, num_samples: int, repeats: int = 5) -> dict:
  key = jax.random.key(0)
  timings = {}
  samplers = (("compiled_loop", sample_codes), ("compiled_loop_without_cache", sample_codes_without_cache),
              ("python_loop", sample_codes_naively))
  for name, fn in samplers:
    jax.block_until_ready(fn(exp, state, key, num_samples))  # compile
    times = []
    for _ in range(repeats):
      start = time.perf_counter()
      jax.block_until_ready(fn(exp, state, key, num_samples))
      times.append(time.perf_counter() - start)
    timings[name] = num_samples / statistics.median(times)
  return {"num_samples": num_samples, "grid": list(exp.model(state).grid_shape),
          "backend": jax.default_backend(),
          **{f"{name}_images_per_s": round(rate, 1) for name, rate in timings.items()},
          "speedup_over_python_loop": round(timings["compiled_loop"] / timings["python_loop"], 2)}


def main(argv):
  del argv
  try:
    exp, state = load_prior(FLAGS.workdir)
    prior = exp.model(state)
    check_request(prior, FLAGS.num_samples, FLAGS.label)
  except (SampleError, trainer.RunError) as e:
    sys.exit(f"error: {e}")
  if FLAGS.benchmark:
    print(json.dumps(benchmark(exp, state, FLAGS.num_samples)))
    return
  codes = sample_codes(exp, state, jax.random.key(FLAGS.seed), FLAGS.num_samples, FLAGS.label,
                       FLAGS.temperature)
  vq_exp, vq_state = trainer.restore_run(exp.config.vqvae_workdir, step=exp.dataset.metadata["step"])
  pictures = np.asarray(decode(vq_exp, vq_state, codes))
  # Without --label a class-conditional prior cycles through the classes: one per column.
  columns = prior.num_classes if (prior.num_classes and FLAGS.label is None) else 0
  images.save_png(FLAGS.output, pictures, columns)
  np.save(os.path.splitext(FLAGS.output)[0] + ".npy", np.asarray(codes))
  print(f"wrote {FLAGS.output} and {os.path.splitext(FLAGS.output)[0]}.npy")


if __name__ == "__main__":
  app.run(main)
