"""New images: code grids sampled from a prior, decoded by the tokenizer whose codes it learned.

`sample_images(prior_workdir, num_samples)` is the last step of the pipeline;
`sample_codes` and `make_sampler` draw the codes alone, in any of the prior's
ways of sampling (its SAMPLERS; for an autoregressive prior with `logits`, also
a Python loop of one compiled forward pass per position), which draw the same
codes for the same key.
"""
from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np

from jaxvq.errors import SampleError
from jaxvq.tokens.runs import load_prior, load_tokenizer_of


# The options a prior's `sample` may take besides the temperature, and the value that leaves
# each off (Prior.SAMPLE_OPTIONS says which a prior takes).
SAMPLE_OPTIONS = {
    "top_k": 0,        # keep the k most likely codes at each draw (0: all)
    "top_p": 1.0,      # keep the fewest most likely codes whose probability reaches p (1: all)
    "guidance": 1.0,   # classifier-free guidance scale s: l_u + s (l_c - l_u) (1: the class's)
    "steps": 0,        # parallel decoding steps (0: the prior's default)
    # the scale of MaskGIT's Gumbel noise on the confidences (None: the prior's config)
    "choice_temperature": None,
}


def given_options(**options) -> dict:
  """The options among SAMPLE_OPTIONS that are set to anything but their 'off' value."""
  unknown = sorted(set(options) - set(SAMPLE_OPTIONS))
  if unknown:
    raise SampleError(f"unknown sampling options {unknown}: they are {sorted(SAMPLE_OPTIONS)}")
  return {k: v for k, v in options.items() if v is not None and v != SAMPLE_OPTIONS[k]}


def check_request(prior, num_samples: int, label, temperature: float = 1.0, **options):
  """Refuses, before any sampling, a request `prior` cannot serve (SampleError naming the
  argument, which the command line calls by its flag).

  `options` are those of SAMPLE_OPTIONS; each one set must be one the prior takes
  (Prior.SAMPLE_OPTIONS), with a value it can use."""
  name = type(prior).CONFIG["name"].default
  for option, value in given_options(**options).items():
    if option not in prior.SAMPLE_OPTIONS:
      takes = ", ".join(prior.SAMPLE_OPTIONS) or "none"
      raise SampleError(f"{option} does not apply to the {name} prior (its options: {takes})",
                        option)
    if option == "top_k" and not 1 <= value <= prior.num_codes:
      raise SampleError(f"top_k must be in [1, {prior.num_codes}] (the codes), or 0 for all; "
                        f"got {value}", option)
    if option == "top_p" and not 0 < value <= 1:
      raise SampleError(f"top_p must be in (0, 1]; got {value}", option)
    if option == "guidance":
      if not value >= 0:
        raise SampleError(f"guidance must be at least 0 (1: no guidance); got {value}", option)
      if not prior.label_dropout:
        raise SampleError(f"guidance {value} needs a class-conditional prior trained with label "
                          f"dropout (config.model.label_dropout > 0); this one had none", option)
    if option == "steps" and not 1 <= value <= prior.num_positions:
      raise SampleError(f"steps must be in [1, {prior.num_positions}] (the grid's positions); "
                        f"got {value}", option)
    if option == "choice_temperature" and not 0 <= value < float("inf"):
      raise SampleError(f"choice_temperature must be a finite number of at least 0 (0: keep "
                        f"the most confident codes; the paper's 4.5); got {value}", option)
  if num_samples < 1:
    raise SampleError(f"num_samples must be at least 1, got {num_samples}", "num_samples")
  if not temperature > 0:
    raise SampleError(f"temperature must be positive, got {temperature}", "temperature")
  if label is not None:
    if not prior.num_classes:
      raise SampleError(f"label {label} given, but this prior is not class-conditional: give "
                        f"none (or train one with config.model.class_conditional=True)")
    if not 0 <= label < prior.num_classes:
      raise SampleError(f"label must be in [0, {prior.num_classes}), got {label}", "label")


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


PYTHON_LOOP = "python_loop"


def sampler_names(prior) -> tuple:
  """The ways `prior` samples: its SAMPLERS, and for an autoregressive prior (one with
  `logits`) a Python loop of one compiled forward pass per position; the first is the default."""
  return tuple(prior.SAMPLERS) + ((PYTHON_LOOP,) if hasattr(prior, "logits") else ())


def make_sampler(exp, num_samples: int, temperature: float = 1.0, how: str = "", **options):
  """fn(state, key, labels) -> [num_samples, h, w] int32 codes, compiled once for reuse.

  `how` is one of the prior's `sampler_names` ("": its default, one compiled program);
  all draw the same codes for the same key. `options`: the prior's SAMPLE_OPTIONS.
  """
  options = given_options(**options)
  prior = exp.model(exp.initial_state)
  names = sampler_names(prior)
  how = how or names[0]
  if how not in names:
    raise SampleError(f"unknown sampler {how!r} for this prior: one of {names}")
  if how != PYTHON_LOOP:
    method = prior.SAMPLERS[how]
    return exp.jit_model(lambda prior, key, labels: getattr(prior, method)(
        key, num_samples, labels, temperature, **options))
  if options:
    raise SampleError(f"the {PYTHON_LOOP} sampler takes no options; got {sorted(options)}")
  forward = exp.jit_model(lambda prior, codes, labels: prior.logits(codes, labels))

  def python_loop(state, key, labels):
    height, width = prior.grid_shape
    codes = jnp.zeros((num_samples, height, width), jnp.int32)
    for position in range(height * width):
      row, col = divmod(position, width)
      logits = forward(state, codes, labels)[:, row, col]
      chosen = jax.random.categorical(jax.random.fold_in(key, position), logits / temperature)
      codes = codes.at[:, row, col].set(chosen)
    return codes

  python_loop.forward = forward   # its one compiled program (jaxvq.runtime.lowering lowers it)
  return python_loop


def sample_codes(exp, state, key, num_samples: int, label=None, temperature: float = 1.0,
                 how: str = "", **options):
  """Code grids drawn from a prior.

  Args:
    exp, state: the prior's experiment and train state (`jaxvq.load_run(dir)`'s
      `.experiment` and `.state`).
    key: the draw's key.
    num_samples: N.
    label: the class of every sample, or None (every class in turn, if conditional).
    temperature: the softmax temperature.
    how: one of the prior's `sampler_names` ("": its default); all draw the same codes.
    **options: the prior's SAMPLE_OPTIONS (top_k, top_p, guidance, steps, choice_temperature).

  Returns:
    [N, h, w] int32 code grids.
  """
  labels = sample_labels(exp.model(state), num_samples, label)
  return make_sampler(exp, num_samples, temperature, how, **options)(state, key, labels)


def sample_images(prior_workdir: str, num_samples: int, label=None, temperature: float = 1.0,
                  seed: int = 0, **options):
  """New images from a trained prior: code grids drawn from it, decoded by its tokenizer.

  Args:
    prior_workdir: the workdir of a trained prior.
    num_samples: N, how many images.
    label: the class to sample (class-conditional priors); None: every class in turn.
    temperature: the softmax temperature of the prior's logits (> 0).
    seed: the draw's seed; the same seed gives the same images.
    **options: the prior's SAMPLE_OPTIONS: top_k, top_p, guidance (classifier-free guidance
      scale), steps (parallel decoding steps), each checked before sampling.

  Returns:
    (pictures [N, H, W, C] in [0, 1], codes [N, h, w] int32, columns): `columns` lays a
    class-conditional prior's samples out one class per column when no `label` is given
    (0 otherwise).
  """
  prior_run = load_prior(prior_workdir)
  prior = prior_run.model
  check_request(prior, num_samples, label, temperature, **options)
  tokenizer_run = load_tokenizer_of(prior_run)
  # On the host between the two: the prior's and the tokenizer's runs may use different meshes.
  codes = np.asarray(sample_codes(prior_run.experiment, prior_run.state, jax.random.key(seed),
                                  num_samples, label, temperature, **options))
  pictures = np.asarray(code_decoder(tokenizer_run)(codes))
  columns = prior.num_classes if (prior.num_classes and label is None) else 0
  return pictures, codes, columns


def make_decoder(exp):
  """fn(state, codes [N, h, w]) -> images [N, H, W, C] in [0, 1]: a tokenizer's decoder,
  compiled."""
  return exp.jit_model(lambda model, codes: model.decode_from_indices(codes))


def code_decoder(tokenizer_run):
  """fn(codes [N, h, w]) -> images [N, H, W, C] in [0, 1]: a tokenizer run's decoder,
  compiled."""
  decode = make_decoder(tokenizer_run.experiment)
  return lambda codes: decode(tokenizer_run.state, codes)
