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

import jax
import jax.numpy as jnp
import numpy as np
from absl import flags

from jaxvq import bench, checkpoint, cli, errors, images, trainer, xla_options

FLAGS = flags.FLAGS


def define_flags() -> None:
  """The command's flags: defined only when it runs, so that importing the module defines none."""
  flags.DEFINE_string("workdir", None, "Workdir of a trained PixelCNN prior.")
  flags.DEFINE_integer("num_samples", 64, "How many images.")
  flags.DEFINE_integer("label", None, "Class to sample (class-conditional priors only).")
  flags.DEFINE_float("temperature", 1.0, "Softmax temperature of the prior's logits.")
  flags.DEFINE_integer("seed", 0, "Random seed.")
  flags.DEFINE_string("output", "samples.png", "PNG file of the sample grid.")
  flags.DEFINE_bool("benchmark", False, "Time compiled vs naive sampling instead.")
  flags.mark_flags_as_required(["workdir"])


class SampleError(errors.UserError):
  """A sampling request the prior cannot serve."""


def load_prior(workdir: str):
  exp, state = trainer.restore_run(workdir)
  if exp.config.model.name != "pixelcnn":
    raise SampleError(f"{workdir} holds a {exp.config.model.name} run, not a PixelCNN prior")
  return exp, state


def check_request(prior, num_samples: int, label, temperature: float = 1.0):
  if num_samples < 1:
    raise SampleError(f"--num_samples must be at least 1, got {num_samples}")
  if not temperature > 0:
    raise SampleError(f"--temperature must be positive, got {temperature}")
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


SAMPLERS = ("compiled_loop", "compiled_loop_without_cache", "python_loop")


def make_sampler(exp, num_samples: int, temperature: float = 1.0, how: str = "compiled_loop"):
  """fn(state, key, labels) -> [num_samples, h, w] int32 codes, compiled once for reuse.

  compiled_loop                one XLA program with the prior's row cache (PixelCNNPrior.sample)
  compiled_loop_without_cache  one XLA program, a whole forward pass per position
  python_loop                  a Python loop of one jitted forward pass per position
  All three draw the same codes for the same key.
  """
  if how == "compiled_loop":
    return xla_options.jit(lambda state, key, labels: exp.model(state).sample(
        key, num_samples, labels, temperature), exp.mesh)
  if how == "compiled_loop_without_cache":
    return xla_options.jit(lambda state, key, labels: exp.model(state).sample_without_cache(
        key, num_samples, labels, temperature), exp.mesh)
  if how != "python_loop":
    raise SampleError(f"unknown sampler {how!r}: one of {SAMPLERS}")
  forward = xla_options.jit(lambda state, codes, labels: exp.model(state).logits(codes, labels),
                            exp.mesh)

  def python_loop(state, key, labels):
    height, width = exp.model(state).grid_shape
    codes = jnp.zeros((num_samples, height, width), jnp.int32)
    for position in range(height * width):
      row, col = divmod(position, width)
      logits = forward(state, codes, labels)[:, row, col]
      chosen = jax.random.categorical(jax.random.fold_in(key, position), logits / temperature)
      codes = codes.at[:, row, col].set(chosen)
    return codes

  return python_loop


def sample_codes(exp, state, key, num_samples: int, label=None, temperature: float = 1.0,
                 how: str = "compiled_loop"):
  """[num_samples, h, w] int32 code grids from the prior (see `make_sampler`)."""
  labels = sample_labels(exp.model(state), num_samples, label)
  return make_sampler(exp, num_samples, temperature, how)(state, key, labels)


def decode(vq_exp, vq_state, codes):
  return xla_options.jit(lambda state, codes: vq_exp.model(state).decode_from_indices(codes),
                         vq_exp.mesh)(vq_state, codes)


def benchmark(exp, state, num_samples: int, repeats: int = 5) -> dict:
  """Images/s of each sampler (median of `repeats` runs after one that compiles)."""
  key = jax.random.key(0)
  labels = sample_labels(exp.model(state), num_samples)
  rates = {}
  for how in SAMPLERS:
    sampler = make_sampler(exp, num_samples, how=how)
    jax.block_until_ready(sampler(state, key, labels))   # compiles
    rates[how] = num_samples / bench.median_seconds(lambda: sampler(state, key, labels), repeats)
  return {"num_samples": num_samples, "grid": list(exp.model(state).grid_shape),
          "backend": jax.default_backend(), "device": jax.devices()[0].device_kind,
          **{f"{how}_images_per_s": round(rate, 1) for how, rate in rates.items()},
          "speedup_over_python_loop": round(rates["compiled_loop"] / rates["python_loop"], 1),
          "speedup_over_loop_without_cache": round(
              rates["compiled_loop"] / rates["compiled_loop_without_cache"], 1)}


def sample_images(prior_workdir: str, num_samples: int, label=None, temperature: float = 1.0,
                  seed: int = 0):
  """New images from a trained prior: (pictures [N, H, W, C] in [0, 1], codes [N, h, w], columns).

  Code grids are drawn from the prior and decoded by the VQ-VAE checkpoint the
  prior's codes were made from. `columns` lays a class-conditional prior's
  samples out one class per column when no `label` is given (0 otherwise).
  """
  exp, state = load_prior(prior_workdir)
  prior = exp.model(state)
  check_request(prior, num_samples, label, temperature)
  vq_dir, vq_step = exp.config.vqvae_workdir, exp.dataset.metadata["step"]
  if vq_step not in checkpoint.saved_steps(os.path.join(vq_dir, "checkpoints")):
    raise SampleError(f"the VQ-VAE checkpoint of step {vq_step}, whose codes the prior learned, is "
                      f"no longer in {vq_dir}/checkpoints: re-encode with `python -m jaxvq.encode "
                      f"--workdir={vq_dir}` and train a new prior on those codes")
  vq_exp, vq_state = trainer.restore_run(vq_dir, step=vq_step)
  codes = sample_codes(exp, state, jax.random.key(seed), num_samples, label, temperature)
  pictures = np.asarray(decode(vq_exp, vq_state, codes))
  columns = prior.num_classes if (prior.num_classes and label is None) else 0
  return pictures, np.asarray(codes), columns


def main(argv):
  del argv
  if FLAGS.benchmark:
    exp, state = load_prior(FLAGS.workdir)
    check_request(exp.model(state), FLAGS.num_samples, FLAGS.label, FLAGS.temperature)
    print(json.dumps(benchmark(exp, state, FLAGS.num_samples)))
    return
  pictures, codes, columns = sample_images(FLAGS.workdir, FLAGS.num_samples, FLAGS.label,
                                           FLAGS.temperature, FLAGS.seed)
  images.save_png(FLAGS.output, pictures, columns)
  np.save(os.path.splitext(FLAGS.output)[0] + ".npy", codes)
  print(f"wrote {FLAGS.output} and {os.path.splitext(FLAGS.output)[0]}.npy")


if __name__ == "__main__":
  define_flags()
  cli.run(main)
