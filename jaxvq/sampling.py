"""New images: code grids sampled from a PixelCNN prior, decoded by its VQ-VAE.

`sample_images(prior_workdir, num_samples)` is the last step of the pipeline;
`sample_codes` and `make_sampler` draw the codes alone, in one of three ways
that draw the same codes for the same key.
"""
from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np

from jaxvq import errors
from jaxvq.data import codes as codes_lib
from jaxvq.train import checkpoint
from jaxvq.train import workdir as workdir_lib
from jaxvq.train.run import load_run


class SampleError(errors.UserError):
  """A sampling request the prior cannot serve."""


def load_prior(workdir: str):
  """The PixelCNN prior run trained in `workdir` (`jaxvq.load_run`, checked to be a prior)."""
  run = load_run(workdir)
  if run.config.model.name != "pixelcnn":
    raise SampleError(f"{workdir} holds a {run.config.model.name} run, not a PixelCNN prior")
  return run


def load_vqvae_of(prior_run):
  """The VQ-VAE run at the checkpoint whose codes `prior_run` learned, checked to be that
  run and checkpoint still."""
  vq_dir = codes_lib.workdir_of(prior_run.config.dataset)
  vq_step = prior_run.experiment.dataset.metadata["step"]
  if vq_step not in checkpoint.saved_steps(os.path.join(vq_dir, "checkpoints")):
    raise SampleError(f"the VQ-VAE checkpoint of step {vq_step}, whose codes the prior learned, is "
                      f"no longer in {vq_dir}/checkpoints: re-encode with `python -m jaxvq encode "
                      f"--workdir={vq_dir}` and train a new prior on those codes")
  codes_lib.check_same_run(prior_run.config.model, vq_dir, workdir_lib.run_id(vq_dir),
                           checkpoint.saved_checksum(os.path.join(vq_dir, "checkpoints"), vq_step))
  return load_run(vq_dir, step=vq_step)


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


def output_path(output: str) -> str:
  """Where a sample grid goes: `output`, a .png file in an existing directory, or
  OUTPUT/samples.png for a directory; refused before any sampling otherwise."""
  if not output:
    raise SampleError("--output is empty: give a .png file, or a directory for samples.png")
  if os.path.isdir(output):
    return os.path.join(output, "samples.png")
  if os.path.splitext(output)[1].lower() != ".png":
    raise SampleError(f"--output={output} is not a .png file: give a name ending in .png, or "
                      f"an existing directory (for its samples.png)")
  parent = os.path.dirname(output) or "."
  if not os.path.isdir(parent):
    raise SampleError(f"--output={output}: its directory {parent} does not exist; create it, "
                      f"or give another --output")
  if not os.access(parent, os.W_OK | os.X_OK):
    raise SampleError(f"--output={output}: its directory {parent} is read-only for this user; "
                      f"give another --output")
  return output


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
    return exp.jit_model(lambda prior, key, labels: prior.sample(
        key, num_samples, labels, temperature))
  if how == "compiled_loop_without_cache":
    return exp.jit_model(lambda prior, key, labels: prior.sample_without_cache(
        key, num_samples, labels, temperature))
  if how != "python_loop":
    raise SampleError(f"unknown sampler {how!r}: one of {SAMPLERS}")
  forward = exp.jit_model(lambda prior, codes, labels: prior.logits(codes, labels))

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
  """Code grids drawn from a prior.

  Args:
    exp, state: the prior's experiment and train state (`jaxvq.load_run(dir)`'s
      `.experiment` and `.state`).
    key: the draw's key.
    num_samples: N.
    label: the class of every sample, or None (every class in turn, if conditional).
    temperature: the softmax temperature.
    how: one of SAMPLERS (see `make_sampler`); all draw the same codes.

  Returns:
    [N, h, w] int32 code grids.
  """
  labels = sample_labels(exp.model(state), num_samples, label)
  return make_sampler(exp, num_samples, temperature, how)(state, key, labels)


def sample_images(prior_workdir: str, num_samples: int, label=None, temperature: float = 1.0,
                  seed: int = 0):
  """New images from a trained prior: code grids drawn from it, decoded by its VQ-VAE.

  Args:
    prior_workdir: the workdir of a trained PixelCNN prior.
    num_samples: N, how many images.
    label: the class to sample (class-conditional priors); None: every class in turn.
    temperature: the softmax temperature of the prior's logits (> 0).
    seed: the draw's seed; the same seed gives the same images.

  Returns:
    (pictures [N, H, W, C] in [0, 1], codes [N, h, w] int32, columns): `columns` lays a
    class-conditional prior's samples out one class per column when no `label` is given
    (0 otherwise).
  """
  prior_run = load_prior(prior_workdir)
  prior = prior_run.model
  check_request(prior, num_samples, label, temperature)
  vq_run = load_vqvae_of(prior_run)
  # On the host between the two: the prior's and the VQ-VAE's runs may use different meshes.
  codes = np.asarray(sample_codes(prior_run.experiment, prior_run.state, jax.random.key(seed),
                                  num_samples, label, temperature))
  pictures = np.asarray(code_decoder(vq_run)(codes))
  columns = prior.num_classes if (prior.num_classes and label is None) else 0
  return pictures, codes, columns


def code_decoder(vq_run):
  """fn(codes [N, h, w]) -> images [N, H, W, C] in [0, 1]: a VQ-VAE run's decoder, compiled."""
  return vq_run.jit(lambda model, codes: model.decode_from_indices(codes))
