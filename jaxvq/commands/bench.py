"""Times a config's compiled train step.

  jaxvq bench --config=configs/NAME.py [--config.key=value ...] [--steps=N]
  jaxvq bench --all                      every model config in configs/
  jaxvq bench --config=... --layers      also each layer, forward and backward
  jaxvq bench --config=... --formulations  jaxvq's XLA options and layer formulations
                                         against the defaults
  jaxvq bench --config=... --peer="PYTHON ../shared/peers/torch_vqvae.py --batch 32"
  jaxvq bench --config=... --cpu_devices=2   the CPU as 2 devices, data parallel
  jaxvq bench --config=configs/PRIOR_NAME.py --sampling   the prior's samplers
  jaxvq bench --config=... --search_chunk_sizes=-1,256   a VQ-VAE's step with the nearest-code
                                         search whole and in chunks of 256 codes, in turns
  jaxvq bench --config=... --input_pipeline --workers=0,1,2   the input pipeline's images/s
                                         per worker count, beside the step's
  jaxvq bench --config=... --sweep=num_codes=512,4096 [--sweep=image_size=32,64] --plot=F.png
                                         step time and memory as each key grows
  jaxvq bench --config=configs/pixelcnn_NAME.py --sampling --grids=7,16,32 --plot=F.png
      [--also=configs/transformer_NAME.py,configs/maskgit_NAME.py --decode_steps=8,16]
                                         sampling time as the code grid grows, per prior
                                         and sampler

Prints one JSON line per config: the model, backend, device kind and count,
batch, compile seconds, the median step time over the timed steps, images/s,
GFLOP per step from XLA's cost analysis of the compiled program, the GFLOP/s
that makes, its fraction of the device's peak, and one device's memory from
XLA's memory analysis of the compiled step: arguments, outputs, temporaries
and the peak, in MiB (jaxvq/bench/step.py).
`--peer` runs another program that prints {"images_per_s": ...} (e.g. the
PyTorch reference) in turns with jaxvq, so both are measured under the same
conditions, and adds the ratio. `--sampling` times a prior config's three
samplers (random parameters: sampling costs the same whatever they are).
"""
import glob
import json
import math
import os

from absl import flags
from ml_collections import config_flags

from jaxvq import config as config_lib
from jaxvq.bench import formulations, growth, input_pipeline, layers, peers, sampling, step
from jaxvq.errors import ConfigError
from jaxvq.runtime import distributed
from jaxvq.train.experiment import setup

FLAGS = flags.FLAGS


def define_flags() -> None:
  config_flags.DEFINE_config_file("config", None, "A config file in configs/.", lock_config=True)
  flags.DEFINE_bool("all", False, "Benchmark every model config in configs/.")
  flags.DEFINE_integer("max_batch", 0, "Time each config at no more than this batch (0: the "
                       "config's own): with --all, a quick check that every config compiles "
                       "and runs.")
  flags.DEFINE_integer("steps", 20, "Timed steps (after the warm-up steps).")
  flags.DEFINE_integer("warmup", 3, "Untimed steps after compiling.")
  flags.DEFINE_bool("layers", False, "Also time each layer's forward and backward pass.")
  flags.DEFINE_bool("formulations", False, "Also time the step compiled with XLA's default options "
                    "against jaxvq's (xla_options), and jaxvq's formulation of its upsamplers, "
                    "1x1 and 4x4 stride-2 convolutions against the plain lax op (and, for the "
                    "upsamplers, a 3x3 convolution plus depth-to-space), layer by layer.")
  flags.DEFINE_string("trace", "", "Also write a jax.profiler trace of the timed steps here "
                      "(Perfetto's perfetto_trace.json.gz and TensorBoard's profile).")
  flags.DEFINE_string("peer", "", "A command printing a JSON line with images_per_s, run in turns.")
  flags.DEFINE_integer("rounds", 3, "With --peer, and for --formulations' step with XLA's "
                       "default options: how many turns each; with --grids, timed calls of "
                       "each sampler.")
  flags.DEFINE_integer("cpu_devices", 0, "On a CPU, split it into this many XLA devices, as "
                       "train.py --cpu_devices does (0: one per core when every config's batch "
                       "divides among them, else one; 1: one device).")
  flags.DEFINE_bool("sampling", False, "Time a prior config's samplers instead of its step.")
  flags.DEFINE_integer("num_samples", 64, "With --sampling: images per sampling call.")
  flags.DEFINE_list("search_chunk_sizes", [], "Instead of the step's row, one per value of "
                    "a VQ-VAE's config.model.quantizer.search_chunk_size (-1: never chunk, "
                    "0: automatic, N: codes per chunk), each step timed in turns (--rounds).")
  flags.DEFINE_bool("input_pipeline", False, "Instead of the step's row, one per --workers: "
                    "images/s through the config's input pipeline (its data read, decoded and "
                    "batched, no model) beside the step's images/s (jaxvq/bench/input_pipeline.py).")
  flags.DEFINE_list("workers", ["0"], "With --input_pipeline: the worker process counts.")
  flags.DEFINE_multi_string("sweep", [], "Instead of the step's row, one row per value of a "
                            "key: KEY=V1,V2,... with KEY num_codes, image_size, batch_size, "
                            "downsample or a config path; repeat the flag to sweep several "
                            "keys, one at a time (jaxvq/bench/growth.py).")
  flags.DEFINE_list("grids", [], "With --sampling: instead of the three samplers at the "
                    "prior's own grid, the row-cached sampler against the full-pass loop at "
                    "each of these G x G grids.")
  flags.DEFINE_string("plot", "", "With --sweep or --grids: also draw the rows into this PNG.")
  flags.DEFINE_list("also", [], "With --sampling --grids: more prior configs, timed after "
                    "--config's and drawn in the same plot.")
  flags.DEFINE_list("samplers", [], "With --sampling --grids: only these samplers (e.g. "
                    "compiled_loop; default: each prior's every compiled sampler).")
  flags.DEFINE_list("decode_steps", [], "With --sampling --grids: the decoding steps at which a "
                    "prior that decodes in parallel (MaskGIT) is timed (default: its own).")


def model_configs() -> list:
  """Every config in configs/ but tiny.py, by path."""
  root = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
      os.path.abspath(__file__)))), "configs")
  return sorted(p for p in glob.glob(os.path.join(root, "*.py"))
                if os.path.basename(p) not in ("__init__.py", "tiny.py"))


def _integers(values, flag: str = "--search_chunk_sizes") -> list:
  try:
    return [int(v) for v in values]
  except ValueError:
    raise ConfigError(f"{flag} takes integers, got {','.join(values)}") from None


def _check_prior(config) -> None:
  if not step.is_prior(config):
    raise ConfigError("--sampling times a prior's samplers: give a prior config")


def _growth(runs) -> None:
  """--sweep and --sampling --grids: the rows of jaxvq/bench/growth.py, and their plot."""
  if len(runs) != 1:
    raise ConfigError("--sweep and --grids take one --config, not --all")
  (_, config), = runs
  step_rows, sampling_rows = [], []
  if FLAGS.grids:
    if not FLAGS.sampling:
      raise ConfigError("--grids goes with --sampling (and a prior config)")
    priors = [config] + [config_lib.load_file(path) for path in FLAGS.also]
    for prior in priors:
      _check_prior(prior)
    for prior in priors:
      for row in growth.sampling_growth(prior, _integers(FLAGS.grids, "--grids"),
                                        FLAGS.num_samples, FLAGS.rounds,
                                        _integers(FLAGS.decode_steps, "--decode_steps"),
                                        FLAGS.samplers):
        sampling_rows.append(row)
        print(json.dumps(row), flush=True)
  for row in growth.step_growth(config, [growth.parse_sweep(s) for s in FLAGS.sweep],
                                FLAGS.steps, FLAGS.warmup):
    step_rows.append(row)
    print(json.dumps(row), flush=True)
  if FLAGS.plot:
    print(f"plot: {growth.plot_growth(step_rows, sampling_rows, FLAGS.plot)}")


def main(argv):
  del argv
  if FLAGS.all:
    runs = [(os.path.relpath(p), config_lib.load_file(p)) for p in model_configs()]
  elif FLAGS.config is not None:
    runs = [(None, FLAGS.config)]
  else:
    raise ConfigError("give --config=configs/NAME.py, or --all")
  if FLAGS.max_batch:
    for _, config in runs:
      config.batch_size = min(config.batch_size, FLAGS.max_batch)
  # One layout for every config timed: one that divides each of their batches.
  distributed.use_cpu_devices(FLAGS.cpu_devices, math.gcd(*(c.batch_size for _, c in runs)))
  if FLAGS.sweep or FLAGS.grids:
    _growth(runs)
    return
  for path, config in runs:
    if FLAGS.input_pipeline:
      for row in input_pipeline.throughput_rows(config, _integers(FLAGS.workers, "--workers"),
                                                FLAGS.steps, FLAGS.warmup):
        print(json.dumps({"config": path, **row} if path else row), flush=True)
      continue
    if FLAGS.sampling:
      _check_prior(config)
      exp = setup(config, step.random_dataset(config))
      print(json.dumps(sampling.sampling_speed(exp, exp.initial_state, FLAGS.num_samples)))
      continue
    if FLAGS.search_chunk_sizes:
      for row in formulations.search_chunk_profile(config, _integers(FLAGS.search_chunk_sizes),
                                                   FLAGS.steps, FLAGS.warmup, FLAGS.rounds):
        print(json.dumps({"config": path, **row} if path else row), flush=True)
      continue
    timer = step.StepTimer(config)   # compiled once, warm after the first timing
    result = step.benchmark(timer, FLAGS.steps, FLAGS.warmup, FLAGS.trace)
    if path:
      result = {"config": path, **result}
    if FLAGS.peer:
      result.update(peers.compare_with_peer(timer, FLAGS.peer, FLAGS.rounds, FLAGS.steps))
    print(json.dumps(result), flush=True)
    rows = layers.layer_profile(timer, FLAGS.steps) if FLAGS.layers else []
    if FLAGS.formulations:
      rows += formulations.formulation_profile(timer, FLAGS.steps, FLAGS.rounds)
    for row in rows:
      print(json.dumps(row), flush=True)
