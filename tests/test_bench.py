"""jaxvq.bench: one JSON line per config, a layer-by-layer profile, a peer run in turns."""
import json
import math
import os
import subprocess
import sys

import pytest

from jaxvq.commands import bench
from jaxvq.runtime import distributed, xla_options
from jaxvq.errors import ConfigError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KEYS = {"model", "backend", "device_kind", "device_count", "batch", "compile_s", "median_step_ms",
        "images_per_s", "gflop_per_step_per_device", "achieved_gflop_s_per_device",
        "matmul_peak_gflop_s", "fraction_of_matmul_peak", "vendor_peak_gflop_s"}


def _bench(*args):
  done = subprocess.run([sys.executable, "-m", "jaxvq", "bench", "--steps=2", "--warmup=1", *args],
                        cwd=REPO, capture_output=True, text=True,
                        env={**os.environ, "XLA_FLAGS": ""})   # the CPU as the command splits it
  assert done.returncode == 0, done.stderr
  return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def test_all_runs_every_model_config_without_its_dataset():
  rows = _bench("--all")
  assert [r["config"] for r in rows] == [os.path.relpath(p, REPO) for p in bench.model_configs()]
  assert {r["model"] for r in rows} == {"autoencoder", "vae", "vqvae", "pixelcnn"}
  layout = distributed.cpu_devices_for(math.gcd(*(r["batch"] for r in rows)),
                                       len(os.sched_getaffinity(0)))
  for row in rows:
    assert KEYS <= set(row) and row["device_count"] == layout
    assert row["median_step_ms"] > 0 and row["gflop_per_step_per_device"] > 0
    assert 0 < row["fraction_of_matmul_peak"] < 1.5


def test_layers_profile_each_conv_and_peer_runs_in_turns():
  peer = f"{sys.executable} -c 'print(\"{{\\\"images_per_s\\\": 123.0}}\")'"
  rows = _bench("--config=configs/tiny.py", "--layers", "--formulations", f"--peer={peer}",
                "--rounds=2")
  step = rows[0]
  layers = [r for r in rows[1:] if "forward_ms" in r]
  formulations = [r for r in rows[1:] if any(k.endswith("max_abs_difference") for k in r)]
  options, = [r for r in rows[1:] if r["layer"] == "train_step"]
  assert options["jaxvq_step_ms"] > 0 and options["xla_default_options_step_ms"] > 0
  assert options["jaxvq_options"] == xla_options.CPU_OPTIONS
  assert step["peer_images_per_s"] == [123.0, 123.0] and len(step["jaxvq_images_per_s"]) == 2
  assert step["ratio_of_medians"] > 0
  names = [r["layer"] for r in layers]
  # tiny.py: 1 residual block; in forward order, the encoder's then the decoder's layers.
  assert names == ["encoder/down1", "encoder/down2", "encoder/conv",
                   "encoder/residual/blocks/0/conv3", "encoder/residual/blocks/0/conv1",
                   "encoder/out", "decoder/conv", "decoder/residual/blocks/0/conv3",
                   "decoder/residual/blocks/0/conv1", "decoder/up1", "decoder/up2"]
  assert all(r["forward_backward_ms"] > 0 and r["gflop_forward_backward"] > 0 for r in layers)
  assert sum(r["gflop_forward_backward"] for r in layers) < step["gflop_per_step_per_device"]
  # The upsamplers and 1x1 convs, each against the lax ops computing the same function.
  assert [r["layer"] for r in formulations] == [n for n in names if "conv1" in n or "up" in n or
                                                "down" in n or n == "encoder/out"]
  differences = [v for r in formulations for k, v in r.items() if k.endswith("max_abs_difference")]
  assert len(differences) == 2 * 2 + 3 + 2 and max(differences) < 1e-4, formulations


def test_cpu_devices_splits_the_cpu_and_each_device_runs_its_share():
  one, = _bench("--config=configs/tiny.py", "--config.num_devices=0", "--cpu_devices=1")
  two, = _bench("--config=configs/tiny.py", "--config.num_devices=0", "--cpu_devices=2")
  assert one["device_count"] == 1 and two["device_count"] == 2
  # Each device's program does about half the step's work.
  assert 0.4 < two["gflop_per_step_per_device"] / one["gflop_per_step_per_device"] < 0.6


def test_cpu_devices_refuses_a_negative_count():
  with pytest.raises(ConfigError, match="cpu_devices"):
    distributed.use_cpu_devices(-1)


@pytest.mark.parametrize("batch_size, cores, expected", [
    (32, 2, 2), (64, 2, 2), (128, 8, 8), (33, 2, 1), (8, 2, 1), (16, 2, 2), (64, 1, 1),
    (24, 4, 1), (64, 3, 1)])
def test_automatic_cpu_layout_is_one_device_per_core_when_the_batch_divides(batch_size, cores,
                                                                            expected):
  assert distributed.cpu_devices_for(batch_size, cores) == expected


def test_automatic_cpu_layout_leaves_an_explicit_xla_flag_and_several_processes_alone(
    monkeypatch):
  calls = []
  monkeypatch.setattr(distributed.jax.config, "update", lambda *a: calls.append(a))
  monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
  assert distributed.use_cpu_devices(0, 64) == 0
  monkeypatch.setenv("XLA_FLAGS", "")
  assert distributed.use_cpu_devices(0, 64, several_processes=True) == 0
  assert not calls
  monkeypatch.setattr(distributed.os, "sched_getaffinity", lambda pid: {0, 1})
  assert distributed.use_cpu_devices(0, 64) == 2 and calls == [("jax_num_cpu_devices", 2)]
  assert distributed.use_cpu_devices(3, 64) == 3 and calls[-1] == ("jax_num_cpu_devices", 3)
