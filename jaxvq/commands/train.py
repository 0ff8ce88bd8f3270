"""Trains a jaxvq model: jaxvq train --config=configs/NAME.py --workdir=DIR [--config.key=value ...]

Rerunning the same command resumes from the latest intact checkpoint in DIR.
SIGTERM or Ctrl-C (SIGINT) saves a checkpoint of the current step and exits; a workdir holding a
run of another config is refused unless --config.overwrite=True.
"""
from absl import flags
from ml_collections import config_flags

from jaxvq import quality
from jaxvq.runtime import distributed
from jaxvq.train import train_and_evaluate

FLAGS = flags.FLAGS


def define_flags() -> None:
  flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics and images.")
  config_flags.DEFINE_config_file("config", None, "A config file in configs/ (FILE.py or "
                                  "FILE.py:ARG).", lock_config=True)
  flags.DEFINE_string("coordinator_address", "", "HOST:PORT of process 0, when training as "
                      "one of several processes (GPU/CPU clusters; TPU VM pods need no flags).")
  flags.DEFINE_integer("num_processes", 0, "How many processes train together.")
  flags.DEFINE_integer("process_id", -1, "This process's index, 0 to num_processes - 1.")
  flags.DEFINE_bool("distributed", False, "Call jax.distributed.initialize() and let JAX find "
                    "the processes (Cloud TPU VM pods, SLURM, Open MPI).")
  flags.DEFINE_integer("cpu_devices", 0, "On a CPU, split it into this many XLA devices (0: "
                       "one per core when the batch divides among them, else one; 1: one "
                       "device); the batch must divide among them.")
  flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  del argv
  several = bool(FLAGS.coordinator_address or FLAGS.num_processes > 1 or FLAGS.distributed
                 or distributed.on_multihost_tpu())
  distributed.use_cpu_devices(FLAGS.cpu_devices, FLAGS.config.batch_size, several)
  distributed.initialize(FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id,
                         FLAGS.distributed)
  train_and_evaluate(FLAGS.config, FLAGS.workdir,
                     final_evaluations=quality.final_evaluations(FLAGS.config))
