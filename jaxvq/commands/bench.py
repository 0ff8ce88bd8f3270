"""Times a config's compiled train step.

  jaxvq bench --config=configs/NAME.py [--config.key=value ...] [--steps=N]
  jaxvq bench --all                      every model config in configs/
  jaxvq bench --config=... --layers      also each layer, forward and backward
  jaxvq bench --config=... --formulations  jaxvq's XLA options and layer formulations
                                         against the defaults
  jaxvq bench --config=... --peer="PYTHON ../shared/peers/torch_vqvae.py --batch 32"
  jaxvq bench --config=... --cpu_devices=2   the CPU as 2 devices, data parallel
  jaxvq bench --config=configs/pixelcnn_NAME.py --sampling   the prior's samplers
  jaxvq bench --config=... --search_chunk_sizes=-1,256   a VQ-VAE's step with the nearest-code
                                         search whole and in chunks of 256 codes, in turns

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
from jaxvq.bench import formulations, layers, peers, sampling, step
from jaxvq.errors import ConfigError
from jaxvq.runtime import distributed
from jaxvq.train.experiment import setup

FLAGS = flags.FLAGS


def define_flags() -> None:
  config_flags.DEFINE_config_file("config", None, "A config file in configs/.", lock_config=True)
  flags.DEFINE_bool("all", False, "Benchmark every model config in configs/.")
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
                       "default options: how many turns each.")
  flags.DEFINE_integer("cpu_devices", 0, "On a CPU, split it into this many XLA devices, as "
                       "train.py --cpu_devices does (0: one per core when every config's batch "
                       "divides among them, else one; 1: one device).")
  flags.DEFINE_bool("sampling", False, "Time a prior config's samplers instead of its step.")
  flags.DEFINE_integer("num_samples", 64, "With --sampling: images per sampling call.")
  flags.DEFINE_list("search_chunk_sizes", [], "Instead of the step's row, one per value of "
                    "a VQ-VAE's config.model.quantizer.search_chunk_size (-1: never chunk, "
                    "0: automatic, N: codes per chunk), each step timed in turns (--rounds).")


def model_configs() -> list:
  """Every config in configs/ but tiny.py, by path."""
  root = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
      os.path.abspath(__file__)))), "configs")
  return sorted(p for p in glob.glob(os.path.join(root, "*.py"))
                if os.path.basename(p) not in ("__init__.py", "tiny.py"))


def _integers(values) -> list:
  try:
    return [int(v) for v in values]
  except ValueError:
    raise ConfigError(f"--search_chunk_sizes takes integers (-1, 0 or codes per chunk), got "
                      f"{','.join(values)}") from None


def main(argv):
  del argv
  if FLAGS.all:
    runs = [(os.path.relpath(p), config_lib.load_file(p)) for p in model_configs()]
  elif FLAGS.config is not None:
    runs = [(None, FLAGS.config)]
  else:
    raise ConfigError("give --config=configs/NAME.py, or --all")
  # One layout for every config timed: one that divides each of their batches.
  distributed.use_cpu_devices(FLAGS.cpu_devices, math.gcd(*(c.batch_size for _, c in runs)))
  for path, config in runs:
    if FLAGS.sampling:
      if config.model.name != "pixelcnn":
        raise ConfigError("--sampling times a PixelCNN prior's samplers: give a prior config")
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
