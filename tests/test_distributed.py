"""Two processes on localhost (CPU devices, gloo collectives) train exactly like one."""
import json
import os
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest

from jaxvq.train import load_run, train_and_evaluate
from jaxvq.train.metrics_writer import read_rows

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN = {"num_train_steps": 6, "log_every_steps": 2, "eval_every_steps": 6,
       "checkpoint_every_steps": 3, "batch_size": 16, "num_eval_examples": 64, "num_devices": 0}


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def _rows(workdir):
  return read_rows(str(workdir))


@pytest.mark.slow
def test_two_processes_equal_one_process_on_the_same_global_batch(tiny_config, tmp_path):
  tiny_config.update(RUN)
  tiny_config.model.quantizer.codebook_update = "ema"   # its statistics must agree too
  workdir = str(tmp_path / "two")
  address = f"localhost:{_free_port()}"
  env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}  # 2 each
  args = [f"--config.{k}={v}" for k, v in RUN.items()] + [
      "--config.model.quantizer.codebook_update=ema"]
  processes = [subprocess.Popen(
      [sys.executable, "train.py", "--config=configs/tiny.py", f"--workdir={workdir}", *args,
       f"--coordinator_address={address}", "--num_processes=2", f"--process_id={i}"],
      cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
      for i in range(2)]
  outputs = [p.communicate(timeout=600) for p in processes]
  for p, (_, err) in zip(processes, outputs):
    assert p.returncode == 0, err[-3000:]
  assert "test at step 6" in outputs[0][0] and "test at step" not in outputs[1][0]  # process 0

  tiny_config.num_devices = 4   # one process, the same 4-device mesh and global batch
  train_and_evaluate(tiny_config, str(tmp_path / "one"))
  runs = [load_run(d, 6) for d in (workdir, str(tmp_path / "one"))]
  states = [run.state for run in runs]
  for a, b in zip(jax.tree.leaves(states[0]), jax.tree.leaves(states[1])):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
  # The EMA statistics (cluster sizes, sums, codebook, usage) moved, and agree.
  assert not all(np.array_equal(a, b) for a, b in zip(
      jax.tree.leaves(states[0].model_state),
      jax.tree.leaves(runs[1].experiment.initial_state.model_state)))
  # Only process 0 wrote metrics: each row once, the same as the one-process run.
  two, one = _rows(workdir), _rows(tmp_path / "one")
  assert [(r["step"], r["split"]) for r in two] == [(r["step"], r["split"]) for r in one]
  for r2, r1 in zip(two, one):
    for key in r1:
      if key not in ("step", "split", "images_per_sec"):
        np.testing.assert_allclose(r2[key], r1[key], rtol=1e-4, atol=1e-6)
  assert os.path.exists(os.path.join(workdir, "images", "reconstructions_000006.png"))
