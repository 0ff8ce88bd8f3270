"""jaxvq.bench: one JSON line per config, a layer-by-layer profile, a peer run in turns."""
import json
import math
import os
import subprocess
import sys

import pytest

from jaxvq.bench import growth
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


@pytest.mark.slow
def test_all_runs_every_model_config_without_its_dataset():
  rows = _bench("--all", "--max_batch=2", "--steps=1", "--warmup=0")
  assert [r["config"] for r in rows] == [os.path.relpath(p, REPO) for p in bench.model_configs()]
  assert {r["model"] for r in rows} == {"autoencoder", "vae", "vqvae", "pixelcnn", "transformer",
                                        "maskgit", "classifier"}
  layout = distributed.cpu_devices_for(math.gcd(*(r["batch"] for r in rows)),
                                       len(os.sched_getaffinity(0)))
  for row in rows:
    assert KEYS <= set(row) and row["device_count"] == layout and row["batch"] <= 2
    assert row["median_step_ms"] > 0 and row["gflop_per_step_per_device"] > 0
    assert 0 < row["fraction_of_matmul_peak"] < 1.5


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_sweep_rows_grow_with_the_codebook_and_the_plot_is_drawn(tiny, tmp_path):
  config = tiny("vqvae")
  sweeps = [growth.parse_sweep("num_codes=16,256"), growth.parse_sweep("image_size=28,56")]
  rows = list(growth.step_growth(config, sweeps, steps=1, warmup=0))
  assert [(r["sweep"], r["value"]) for r in rows] == [
      ("num_codes", 16), ("num_codes", 256), ("image_size", 28), ("image_size", 56)]
  assert [r["input_shape"] for r in rows[2:]] == [[28, 28, 1], [56, 56, 1]]
  # The codebook (K x D parameters and their Adam moments) is an argument of the step.
  assert rows[1]["argument_mib"] > rows[0]["argument_mib"]
  assert rows[3]["temp_mib"] > rows[2]["temp_mib"]   # 4x the activations
  grids = list(growth.sampling_growth(tiny("pixelcnn"), [3, 6], num_samples=2, repeats=1))
  assert [(g["positions"], g["sampler"]) for g in grids] == [
      (9, "compiled_loop"), (9, "compiled_loop_without_cache"),
      (36, "compiled_loop"), (36, "compiled_loop_without_cache")]
  assert all(g["ms_per_image"] > 0 and g["speedup"] > 0 for g in grids)
  assert [g["sequential_calls_per_image"] for g in grids] == [9, 9, 36, 36]
  path = growth.plot_growth(rows, grids, str(tmp_path / "growth.png"))
  assert os.path.getsize(path) > 10000


@pytest.mark.parametrize("text", ["num_codes", "num_codes=", "num_codes=a,b", "=1,2"])
def test_a_malformed_sweep_is_refused(text):
  with pytest.raises(ConfigError, match="--sweep takes KEY=V1,V2"):
    growth.parse_sweep(text)


def test_a_sweep_of_a_key_the_config_lacks_is_refused(tiny):
  with pytest.raises(ConfigError, match="no key 'model.nothing'"):
    list(growth.step_growth(tiny("vqvae"), [growth.parse_sweep("model.nothing=1")], 1, 0))


def test_compare_runs_each_config_at_each_dtype_and_refuses_a_bad_one_before_training(tmp_path):
  from jaxvq.bench import variants
  from jaxvq.config import load_file
  base = load_file(os.path.join(REPO, "configs", "vqvae_fashion_mnist.py"))
  runs = variants.at_dtypes({"vq": base}, ["float32", "bfloat16"])
  assert {n: c.dtype for n, c in runs.items()} == {"vq_float32": "float32",
                                                    "vq_bfloat16": "bfloat16"}
  assert base.dtype == "float32" and runs["vq_bfloat16"].model == base.model
  done = subprocess.run([sys.executable, "-m", "jaxvq", "compare", "--configs=configs/tiny.py",
                         "--dtypes=float32,float16", f"--workdir={tmp_path / 'runs'}"],
                        cwd=REPO, capture_output=True, text=True)
  assert done.returncode != 0 and "'float16'" in done.stderr.strip().splitlines()[-1]
  assert not (tmp_path / "runs").exists()
