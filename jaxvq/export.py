"""A trained run as serialized `jax.export` functions, to serve without jaxvq: `jaxvq export`.

  OUTPUT/encode.jaxexport   a tokenizer's images [b, H, W, C] float32 in [0, 1] -> codes
                            [b, h, w] int32 in [0, K)
  OUTPUT/decode.jaxexport   its codes [b, h, w] -> images [b, H, W, C] float32 in [0, 1]
  OUTPUT/sample.jaxexport   a prior's (key uint32[2], labels int32[b]) -> images [b, H, W, C],
                            through the decoder of the tokenizer whose codes it learned
  OUTPUT/manifest.json      each function's file, shapes, dtypes and value ranges; the run and
                            its checkpoint (step, checksum); the jaxvq and jax versions

A user needs jax alone (docs/export.md):

  exported = jax.export.deserialize(open("OUTPUT/decode.jaxexport", "rb").read())
  images = exported.call(codes)

The weights are constants of each module, so one file is the whole function. `b` is a
symbolic batch (any size) unless `batch` fixes it; an unconditional prior's `sample`, which
has no input to take its batch from, draws DEFAULT_SAMPLE_BATCH images unless `batch` says
otherwise. On CPU the functions give the run's own outputs bit for bit when XLA compiles them
with jaxvq's CPU options (the manifest's `cpu_xla_flags`, as XLA_FLAGS).
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
from typing import Callable, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxvq import registry, sampling
from jaxvq.errors import RunError, SampleError, UserError
from jaxvq.ops import vq
from jaxvq.priors.base import Prior
from jaxvq.runtime import files, xla_options
from jaxvq.tokens.runs import load_prior, load_tokenizer_of
from jaxvq.train import workdir as workdir_lib
from jaxvq.train.run import Run, load_run
from jaxvq.version import __version__

FORMAT, FORMAT_VERSION = "jaxvq-export", 1
MANIFEST = "manifest.json"
SUFFIX = ".jaxexport"
PLATFORMS = ("cpu", "cuda", "rocm", "tpu")        # those jax.export lowers for
DEFAULT_PLATFORMS = ("cpu", "cuda", "tpu")
DEFAULT_SAMPLE_BATCH = 16
BATCH = "b"                                       # the symbolic batch's name in the manifest

IMAGES_RANGE = {"min": 0.0, "max": 1.0}


def export_run(workdir: str, output: str, platforms: Sequence[str] = DEFAULT_PLATFORMS,
               batch: Optional[int] = None, temperature: float = 1.0, **options) -> dict:
  """Writes a trained run's functions as `jax.export` artifacts into the directory `output`.

  Args:
    workdir: a trained tokenizer's (VQ-VAE's) workdir, for `encode` and `decode`; or a
      trained prior's, for `sample` (its tokenizer's decoder included).
    output: a new or empty directory, or one holding an earlier export of this same run
      (replaced); refused when it holds anything else.
    platforms: what the functions are lowered for, among PLATFORMS.
    batch: a fixed batch for every function; None: a symbolic one where the function takes
      it from an input (an unconditional prior's `sample`: DEFAULT_SAMPLE_BATCH).
    temperature, **options: a prior's sampling options (jaxvq.sampling.SAMPLE_OPTIONS), baked
      into `sample` and checked as `jaxvq sample` checks them.

  Returns:
    The manifest written as OUTPUT/manifest.json.

  Raises:
    UserError, before anything is written, for a workdir without a trained tokenizer or
    prior, a damaged checkpoint, an `output` holding other files, an unknown platform, a
    batch below 1 or sampling options the prior cannot take.
  """
  platforms = check_platforms(platforms)
  if batch is not None and batch < 1:
    raise UserError(f"batch must be at least 1, got {batch}", "batch")
  if jax.process_count() > 1:
    raise RunError(f"a run is exported by one process: export {workdir} on one host")
  kind = _kind(workdir)
  check_output(output, workdir)
  functions, runs = _functions_of(workdir, kind, batch, temperature, options)
  blobs, described = {}, {}
  for name, function in functions.items():
    exported = jax.export.export(jax.jit(function.fn), platforms=platforms)(
        *[spec for _, spec, _ in function.inputs])
    blob = exported.serialize()
    blobs[name + SUFFIX] = blob
    described[name] = function.describe(name + SUFFIX, exported, blob)
  manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, "kind": kind,
              "functions": described, "platforms": list(platforms), **runs,
              "jaxvq_version": __version__, "jax_version": jax.__version__,
              "cpu_xla_flags": cpu_xla_flags()}
  _write(output, workdir, blobs, manifest)
  return manifest


def check_platforms(platforms: Sequence[str]) -> tuple:
  """The platforms to lower for (a list, or "cpu,cuda"), each once, in order; UserError naming
  any other."""
  if isinstance(platforms, str):
    platforms = platforms.split(",")
  platforms = tuple(dict.fromkeys(p.strip().lower() for p in platforms if p.strip()))
  unknown = [p for p in platforms if p not in PLATFORMS]
  if unknown or not platforms:
    raise UserError(f"platforms must be among {', '.join(PLATFORMS)}; got "
                    f"{', '.join(unknown) or 'none'}", "platforms")
  return platforms


def cpu_xla_flags() -> str:
  """The XLA_FLAGS that make XLA compile on CPU as jaxvq's runs do (jaxvq.runtime.xla_options),
  so that the functions give the run's own bits."""
  return " ".join(f"--{name}={value}" for name, value in xla_options.CPU_OPTIONS.items())


def describe(run: Run) -> dict:
  """What names a run and its checkpoint in a manifest."""
  return {"workdir": os.path.abspath(run.workdir), "run_id": run.run_id,
          "model": run.config.model.name, "dataset": run.config.dataset, "step": run.step,
          "checksum": run.checksum}


# ----------------------------------------------------------------------------- the functions

class _Function:
  """A function to export: fn(*inputs), each input (name, ShapeDtypeStruct, what it holds)."""

  def __init__(self, fn: Callable, inputs: list, outputs: list, **extra):
    self.fn, self.inputs, self.outputs, self.extra = fn, inputs, outputs, extra

  def describe(self, file: str, exported, blob: bytes) -> dict:
    """Its manifest entry: the file, its size and SHA-256, each input's and output's shape
    (the symbolic batch by its name), dtype and value range."""
    def entry(name, aval, what):
      return {"name": name, "shape": [d if isinstance(d, int) else str(d) for d in aval.shape],
              "dtype": str(aval.dtype), **what}
    return {"file": file, "bytes": len(blob), "sha256": hashlib.sha256(blob).hexdigest(),
            "inputs": [entry(n, a, w) for (n, _, w), a in zip(self.inputs, exported.in_avals)],
            "outputs": [entry(n, a, w) for (n, w), a in zip(self.outputs, exported.out_avals)],
            **self.extra}


def _batch_dim(batch: Optional[int]):
  return batch if batch else jax.export.symbolic_shape(BATCH)[0]


def _frozen(run: Run) -> Callable:
  """model() -> the run's model, with the checkpoint's variables as constants of the function
  being traced (the weights inside the artifact)."""
  variables = jax.tree.map(lambda leaf: np.asarray(jax.device_get(leaf)),
                           (run.state.params, run.state.model_state))

  def model():
    # Behind the barrier XLA cannot fold the weights into the computations that read them:
    # folded, they would be computed by its constant evaluator, not by the kernels of the
    # run's own compiled functions, which take them as arguments, and lose the run's bits.
    # One barrier per array, so that the arrays a function does not read are left out of it.
    params, model_state = jax.tree.map(jax.lax.optimization_barrier, variables)
    return nnx.merge(run.experiment.graphdef, params, model_state)

  return model


def _searching_any_batch(model, positions: int) -> None:
  """Fixes the nearest-code search's chunks for a symbolic batch: the automatic choice
  (jaxvq.ops.vq.search_chunk) depends on how many vectors a call searches, unknown here, so
  the search chunks as the run does for `positions` vectors (one image), whole for any batch
  (-1) where that is unchunked."""
  for _, module in nnx.iter_modules(model):
    chunk = getattr(module, "search_chunk_size", None)
    if isinstance(chunk, int) and hasattr(module, "num_codes"):
      module.search_chunk_size = vq.search_chunk(positions, module.num_codes, chunk) or -1


def _codes_range(tokenizer) -> dict:
  return {"min": 0, "max": int(tokenizer.num_codes) - 1}


def _tokenizer_functions(run: Run, batch: Optional[int]) -> dict:
  """encode and decode of a tokenizer run."""
  model = _frozen(run)
  tokenizer = run.model
  images = jax.ShapeDtypeStruct((_batch_dim(batch),) + tuple(run.experiment.dataset.image_shape),
                                jnp.float32)
  codes = _codes_range(tokenizer)

  def encode(images):
    m = model()
    if batch is None:
      _searching_any_batch(m, math.prod(tokenizer.grid_shape))
    return m.encode_to_indices(images)

  def decode(indices):
    return model().decode_from_indices(indices)

  return {
      "encode": _Function(encode, [("images", images, IMAGES_RANGE)], [("codes", codes)]),
      # decode takes what encode gives: [b, h, w] (residual VQ: [b, h, w, Q]) int32.
      "decode": _Function(decode, [("codes", jax.eval_shape(encode, images), codes)],
                          [("images", IMAGES_RANGE)]),
  }


def _sample_function(prior_run: Run, tokenizer_run: Run, batch: Optional[int],
                     temperature: float, options: dict) -> _Function:
  """sample(key, labels) -> images of a prior run (sample(key) for an unconditional one):
  its default sampler's codes, decoded by its tokenizer run, as `jaxvq sample` draws them."""
  prior, tokenizer = _frozen(prior_run), _frozen(tokenizer_run)
  method = next(iter(prior_run.model.SAMPLERS.values()))   # the prior's default sampler
  num_classes = prior_run.model.num_classes
  key_data = jax.random.key_data(jax.random.key(0))
  impl = str(jax.random.key_impl(jax.random.key(0)))
  inputs = [("key", jax.ShapeDtypeStruct(key_data.shape, key_data.dtype),
             {"make": "jax.random.key_data(jax.random.key(seed))", "impl": impl})]
  if num_classes:
    inputs.append(("labels", jax.ShapeDtypeStruct((_batch_dim(batch),), jnp.int32),
                   {"min": 0, "max": num_classes - 1}))
  num = batch or DEFAULT_SAMPLE_BATCH

  def sample(key, labels=None):
    codes = getattr(prior(), method)(jax.random.wrap_key_data(key, impl=impl),
                                     num if labels is None else labels.shape[0], labels,
                                     temperature, **options)
    return tokenizer().decode_from_indices(codes)

  return _Function(sample, inputs, [("images", IMAGES_RANGE)],
                   options={"temperature": temperature, **options})


def _functions_of(workdir: str, kind: str, batch: Optional[int], temperature: float,
                  options: dict) -> tuple:
  """(name -> _Function, the manifest's runs) of a tokenizer's or a prior's workdir; refuses
  a damaged or untrained run, and sampling options it cannot take, when loading it."""
  if kind == "tokenizer":
    if temperature != 1.0 or sampling.given_options(**options):
      raise SampleError(f"{workdir} holds a tokenizer: the temperature and the sampling "
                        f"options apply to a prior's sample; give none")
    run = load_run(workdir)
    return _tokenizer_functions(run, batch), {"run": describe(run)}
  run = load_prior(workdir)
  sampling.check_request(run.model, batch or 1, None, temperature, **options)
  tokenizer_run = load_tokenizer_of(run)
  sample = _sample_function(run, tokenizer_run, batch, temperature,
                            sampling.given_options(**options))
  return {"sample": sample}, {"run": describe(run), "tokenizer": describe(tokenizer_run)}


def _kind(workdir: str) -> str:
  """'tokenizer' or 'prior', from the workdir's config; RunError for any other run."""
  name = workdir_lib.load_config(workdir).model.name
  cls = registry.model_class(name)
  if issubclass(cls, Prior):
    return "prior"
  if all(hasattr(cls, method) for method in ("encode_to_indices", "decode_from_indices")):
    return "tokenizer"
  raise RunError(f"{workdir} holds a run of model {name!r}: export serves a tokenizer (a "
                 f"VQ-VAE) or a prior; give the workdir of one")


# ----------------------------------------------------------------------------- the directory

def read_manifest(output: str) -> Optional[dict]:
  """The manifest of the jaxvq export in `output`, or None if it holds none (or a damaged one)."""
  try:
    with open(os.path.join(output, MANIFEST)) as f:
      manifest = json.load(f)
  except (OSError, UnicodeDecodeError, ValueError):
    return None
  if not (isinstance(manifest, dict) and manifest.get("format") == FORMAT and
          isinstance(manifest.get("functions"), dict) and isinstance(manifest.get("run"), dict)):
    return None
  return manifest


def _is_this_run(manifest: dict, workdir: str) -> bool:
  run_id = workdir_lib.run_id(workdir)
  if run_id:
    return manifest["run"].get("run_id") == run_id
  return manifest["run"].get("workdir") == os.path.abspath(workdir)   # a run of jaxvq 0.1


def check_output(output: str, workdir: str) -> None:
  """Refuses an `output` that cannot take the export of the run in `workdir`: a file, a path
  under a file or in a read-only directory, or a directory holding anything but an earlier
  export of that run (which the new one replaces)."""
  if not output or not output.strip():
    raise UserError("output is empty: give a directory for the exported functions, e.g. "
                    "--output=exported", "output")
  if os.path.exists(output) and not os.path.isdir(output):
    raise UserError(f"output {output} is a file: give a new or empty directory", "output")
  existing = os.path.abspath(output)
  while not os.path.exists(existing):
    existing = os.path.dirname(existing)
  if not os.path.isdir(existing):
    raise UserError(f"output {output} lies under {existing}, which is a file: give another "
                    f"--output", "output")
  parent = os.path.dirname(os.path.abspath(output))
  writable = parent if os.path.exists(parent) else existing
  if not os.access(writable, os.W_OK | os.X_OK):
    raise UserError(f"output {output}: {writable} is read-only for this user; give another "
                    f"--output", "output")
  names = sorted(os.listdir(output)) if os.path.isdir(output) else []
  if not names:
    return
  manifest = read_manifest(output)
  ours = {MANIFEST} | {f.get("file") for f in (manifest or {}).get("functions", {}).values()
                       if isinstance(f, dict)}
  others = [n for n in names if n not in ours]
  if manifest is None or others:
    shown = ", ".join((others or names)[:5]) + (", ..." if len(others or names) > 5 else "")
    raise UserError(f"output {output} holds files that are not a jaxvq export of this run: "
                    f"{shown}; give a new or empty directory (jaxvq deletes none of them)",
                    "output")
  if not _is_this_run(manifest, workdir):
    run = manifest["run"]
    raise UserError(f"output {output} holds the export of another run (run {run.get('run_id')} "
                    f"in {run.get('workdir')}); give a new or empty directory, or delete it",
                    "output")


def _write(output: str, workdir: str, blobs: dict, manifest: dict) -> None:
  """Writes the files into a temporary directory beside `output`, then renames it to `output`:
  a killed export leaves no half of one there."""
  parent = os.path.dirname(os.path.abspath(output))
  tmp = None
  try:
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(os.path.abspath(output))}.",
                           suffix=".tmp", dir=parent)
    for name, blob in blobs.items():
      with open(os.path.join(tmp, name), "wb") as f:
        f.write(blob)
    with open(os.path.join(tmp, MANIFEST), "w") as f:
      f.write(json.dumps(manifest, indent=2) + "\n")
    check_output(output, workdir)   # again: nothing of the user's appeared there meanwhile
    files.publish_dir(tmp, output)  # deletes only the earlier export check_output found
  except BaseException as e:
    if tmp is not None:
      shutil.rmtree(tmp, ignore_errors=True)
    files.raise_if_disk_full(e, output)
    raise
