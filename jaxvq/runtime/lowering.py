"""Whether jaxvq's compiled functions lower for the platforms it is launched on (TPU, GPU)
from a machine that has neither: each function a config compiles, exported with
`jax.export` for `cpu`, `cuda` and `tpu` on abstract arguments of the config's shapes.

  exp = lowering.experiment(config)                 # abstract state, random data of its shapes
  for function in lowering.functions(exp):          # train and evaluation steps, encode, ...
    lowering.failures(function)                     # {} or {platform: why it did not lower}

Which functions a config has follows from its model's interfaces: every model has
its train and evaluation steps; a model with `final_metrics`, an initialisation
from data or its own `generate` has those compiled too; a tokenizer
(jaxvq.tokens.Tokenizer) encodes and decodes; a prior (jaxvq.Prior) samples, in
each of its `sampling.sampler_names` (with its sampling options on, and off).
Nothing is initialised or computed: the state is jax.ShapeDtypeStruct (`setup(...,
abstract=True)`), so a full-size config costs what tracing it costs.

Lowering gives the StableHLO that a platform's compiler takes; it does not compile
it for the device or run it (docs/testing.md says what that leaves unchecked).
"""
from __future__ import annotations

import dataclasses
import glob
import os
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax import export as jax_export

from jaxvq import config as config_lib
from jaxvq import sampling
from jaxvq.bench.step import PRIOR_GRID, PRIOR_NUM_CODES, is_prior, random_dataset
from jaxvq.models.base import Model
from jaxvq.priors.base import Prior
from jaxvq.runtime import sharding
from jaxvq.tokens import codes as codes_lib
from jaxvq.tokens.runs import make_encoder
from jaxvq.tokens.tokenizer import Tokenizer
from jaxvq.train import evaluate, steps
from jaxvq.train.experiment import Experiment, setup

PLATFORMS = ("cpu", "cuda", "tpu")
# Repeated blocks lower to the same operations whatever their number: one or two of each
# keep a config's shapes (images, grid, codebook, widths, stages) and trace in less time.
NARROW = {"num_residual_blocks": 1, "num_layers": 2, "depth": 1}
NUM_SAMPLES = 8   # the batch of the samplers and of `generate`
# A value that turns each of jaxvq.sampling.SAMPLE_OPTIONS on, so that the truncated and
# guided ways of drawing lower too.
OPTIONS_ON = {"top_k": 2, "top_p": 0.9, "guidance": 1.5, "steps": 2, "choice_temperature": 9.0}


@dataclasses.dataclass(frozen=True)
class CompiledFunction:
  """One function a config compiles: `fn` (a jax.jit function) and its arguments, abstract."""
  name: str
  fn: Callable
  args: tuple


def config_files(directory: str) -> list:
  """The config files of `directory` (each *.py but __init__.py), sorted."""
  return sorted(p for p in glob.glob(os.path.join(directory, "*.py"))
                if os.path.basename(p) != "__init__.py")


def narrow(config):
  """A copy of `config` with one or two of each repeated block (NARROW), where it has them."""
  config = config.copy_and_resolve_references()
  config.model.update({k: v for k, v in NARROW.items() if k in config.model})
  return config


def tokenizer_config(config, configs_dir: str):
  """The config in `configs_dir` of the tokenizer whose codes a prior's config names
  (codes:workdirs/NAME -> NAME.py), or None."""
  path = os.path.join(configs_dir, os.path.basename(
      os.path.normpath(codes_lib.workdir_of(config.dataset))) + ".py")
  return config_lib.load_file(path) if os.path.isfile(path) else None


def experiment(config, configs_dir: str = "") -> Experiment:
  """`config`'s experiment with abstract state (jax.ShapeDtypeStruct), on random data of its
  shapes (jaxvq.bench.step.random_dataset), nothing initialised.

  A prior's code grid and K are those of its tokenizer's config in `configs_dir`
  (`tokenizer_config`) where there is one, else bench's (8 x 8, K = 512).
  """
  grid, num_codes = PRIOR_GRID, PRIOR_NUM_CODES
  tokenizer = tokenizer_config(config, configs_dir) if is_prior(config) and configs_dir else None
  if tokenizer is not None:
    exp = experiment(narrow(tokenizer))
    model = exp.model(exp.initial_state)
    grid, num_codes = model.grid_shape, model.num_codes
  dataset = random_dataset(config, grid, num_codes, use_saved_codes=False,
                           num_examples=config.batch_size)
  return setup(config, dataset, abstract=True)


def functions(exp: Experiment) -> list:
  """Every CompiledFunction of `exp` (`experiment`): what training, evaluation, encoding,
  decoding and sampling compile for its model (the module docstring says which)."""
  config, mesh, state = exp.config, exp.mesh, exp.initial_state
  model = exp.model(state)
  example = exp.dataset.train.inputs(np.arange(1))
  batched, replicated = sharding.batch_sharded(mesh), sharding.replicated(mesh)
  key = jax.eval_shape(lambda: jax.random.key(0))

  def inputs(size, placed=batched):
    return jax.ShapeDtypeStruct((size,) + example.shape[1:], example.dtype, sharding=placed)

  def vector(size, dtype):
    return jax.ShapeDtypeStruct((size,), dtype, sharding=batched)

  train_batch = (inputs(config.batch_size), vector(config.batch_size, jnp.int32))
  size = evaluate.eval_batch_size(exp)
  eval_args = (state, (inputs(size), vector(size, jnp.int32)), vector(size, jnp.float32),
               vector(size, jnp.int32))
  found = [CompiledFunction("train_step", steps.make_train_step(exp), (state, train_batch)),
           CompiledFunction("eval_step", steps.make_eval_step(exp), eval_args)]
  if model.final_metrics_examples(size):
    found.append(CompiledFunction("final_metrics_step", steps.make_final_metrics_step(exp),
                                  eval_args))
  if model.num_initialization_batches:
    first = jax.ShapeDtypeStruct((model.num_initialization_batches, config.batch_size)
                                 + example.shape[1:], example.dtype, sharding=replicated)
    found.append(CompiledFunction("initialize_from_data", steps.make_initialize_step(exp),
                                  (state, first)))
  if type(model).generate is not Model.generate:
    reference = jax.ShapeDtypeStruct((config.num_image_grid,) + example.shape[1:], jnp.float32,
                                     sharding=replicated)
    generate = exp.jit_model(lambda model, key, x: model.generate(key, NUM_SAMPLES, x))
    found.append(CompiledFunction("generate", generate, (state, key, reference)))
  if isinstance(model, Tokenizer):
    depth = (model.code_depth,) if model.code_depth > 1 else ()
    codes = jax.ShapeDtypeStruct((NUM_SAMPLES,) + tuple(model.grid_shape) + depth, jnp.int32)
    found += [CompiledFunction("encode", make_encoder(exp), (state, inputs(size))),
              CompiledFunction("decode", sampling.make_decoder(exp), (state, codes))]
  if isinstance(model, Prior):
    found += sampler_functions(exp, model, key)
  return found


def sampler_functions(exp: Experiment, prior: Prior, key) -> list:
  """A prior's samplers (`sampling.make_sampler`), each as it draws by default and, where the
  prior takes sampling options, with each of them on; the Python loop's one compiled pass."""
  labels = sampling.sample_labels(prior, NUM_SAMPLES)
  labels = None if labels is None else jax.ShapeDtypeStruct(labels.shape, labels.dtype)
  options = {k: v for k, v in OPTIONS_ON.items() if k in prior.SAMPLE_OPTIONS and (
      k != "guidance" or prior.label_dropout)}
  found = []
  for how in sampling.sampler_names(prior):
    if how == sampling.PYTHON_LOOP:
      codes = jax.ShapeDtypeStruct((NUM_SAMPLES,) + prior.grid_shape, jnp.int32)
      forward = sampling.make_sampler(exp, NUM_SAMPLES, how=how).forward
      found.append(CompiledFunction(f"sample:{how}", forward, (exp.initial_state, codes, labels)))
      continue
    for chosen in ({}, options) if options else ({},):
      name = f"sample:{how}" + "".join(f",{k}={v}" for k, v in chosen.items())
      found.append(CompiledFunction(name, sampling.make_sampler(exp, NUM_SAMPLES, how=how,
                                                                **chosen),
                                    (exp.initial_state, key, labels)))
  return found


def export(function: CompiledFunction, platforms=PLATFORMS) -> jax_export.Exported:
  """`function` lowered for every one of `platforms` (one jax.export of them all)."""
  return jax_export.export(function.fn, platforms=tuple(platforms))(*function.args)


def failures(function: CompiledFunction, platforms=PLATFORMS) -> dict:
  """{platform: why `function` does not lower for it}; {} when it lowers for all of them.

  One export for all the platforms; where that fails, one per platform says which. An error
  that only the export for all of them meets is under their names joined by '+'.
  """
  try:
    export(function, platforms)
    return {}
  except Exception as error:  # pylint: disable=broad-except  (any error is the finding)
    together = _why(error)
  found = {}
  for platform in platforms:
    try:
      export(function, (platform,))
    except Exception as error:  # pylint: disable=broad-except
      found[platform] = _why(error)
  return found or {"+".join(platforms): together}


def _why(error: Exception) -> str:
  return f"{type(error).__name__}: {' '.join(str(error).split())[:500]}"


def check_file(path: str, platforms=PLATFORMS, narrowed: bool = True) -> dict:
  """{function name: failures(function)} of each compiled function of the config file
  `path` (narrowed: with NARROW's blocks), a prior's tokenizer looked up beside it."""
  config = config_lib.load_file(path)
  exp = experiment(narrow(config) if narrowed else config, os.path.dirname(path))
  return {f.name: failures(f, platforms) for f in functions(exp)}
