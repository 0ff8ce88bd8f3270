"""Crash-safe resume, preemption, divergence, and one-line errors for bad input."""
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from jaxvq import errors
from jaxvq.tokens.runs import encode_codes
from jaxvq.train import checkpoint, load_run, train_and_evaluate

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# A run whose time goes mostly into writing checkpoints, so that kills land in them.
KILL_RUN = {"num_train_steps": 24, "checkpoint_every_steps": 1, "log_every_steps": 2,
            "eval_every_steps": 12, "num_devices": 1, "keep_checkpoints": 3}


def _command(workdir, **overrides):
  return ([sys.executable, "train.py", "--config=configs/tiny.py", f"--workdir={workdir}"] +
          [f"--config.{k}={v}" for k, v in overrides.items()])


def _lines(workdir):
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    return f.read().splitlines()


def _reference_run(tiny_config, tmp_path, **overrides):
  tiny_config.update(overrides)
  workdir = str(tmp_path / "uninterrupted")
  train_and_evaluate(tiny_config, workdir)
  return load_run(workdir, tiny_config.num_train_steps).state, workdir


def _assert_same_run(reference, reference_dir, workdir, num_steps):
  state = load_run(workdir, num_steps).state
  for a, b in zip(jax.tree.leaves(reference), jax.tree.leaves(state)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  rows = [json.loads(line) for line in _lines(workdir)]   # every line whole JSON
  keys = [(r["step"], r["split"]) for r in rows]
  assert len(keys) == len(set(keys)), "duplicated rows"
  reference_rows = [json.loads(line) for line in _lines(reference_dir)]
  assert keys == [(r["step"], r["split"]) for r in reference_rows]
  tests = lambda rs: [r for r in rs if r["split"] == "test"]
  assert tests(rows) == tests(reference_rows)


def _wait_for(predicate, process, timeout=120) -> bool:
  """Waits until `predicate()`; False if the process ended first."""
  deadline = time.time() + timeout
  while not predicate():
    if process.poll() is not None:
      return False
    assert time.time() < deadline
    time.sleep(0.005)
  return True


@pytest.mark.slow
def test_sigkill_at_random_moments_resumes_to_the_uninterrupted_run(tiny_config, tmp_path,
                                                                     capsys):
  reference, reference_dir = _reference_run(tiny_config, tmp_path, **KILL_RUN)
  workdir = str(tmp_path / "killed")
  checkpoints = os.path.join(workdir, "checkpoints")
  rng = random.Random(0)
  kills = []
  for attempt in range(4):
    before = checkpoint.latest_step(checkpoints) or 0
    process = subprocess.Popen(_command(workdir, **KILL_RUN), cwd=REPO,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # Once this attempt has made progress: kill as a checkpoint is being written
    # (its temporary directory exists), or after a random delay.
    _wait_for(lambda: os.path.isdir(checkpoints) and any(
        d.isdigit() and int(d) > before for d in os.listdir(checkpoints)), process)
    if attempt % 2 == 0:
      _wait_for(lambda: any(not d.isdigit() for d in os.listdir(checkpoints)), process)
    else:   # between checkpoints: in a step, an evaluation or a metrics row
      target = before + rng.randint(2, 4)
      _wait_for(lambda: (checkpoint.latest_step(checkpoints) or 0) >= target, process)
      time.sleep(rng.uniform(0.0, 0.05))
    if process.poll() is None:
      process.send_signal(signal.SIGKILL)
      process.wait()
      kills.append(checkpoint.latest_step(checkpoints))
  assert len(kills) >= 3 and kills[-1] < KILL_RUN["num_train_steps"], kills
  capsys.readouterr()
  train_and_evaluate(tiny_config, workdir)   # the rerun: in this process, as it kills nothing
  assert "resumed from the checkpoint" in capsys.readouterr().out
  _assert_same_run(reference, reference_dir, workdir, KILL_RUN["num_train_steps"])


@pytest.mark.slow
def test_sigterm_saves_the_current_step_then_exits(tiny_config, tmp_path):
  run = dict(KILL_RUN, checkpoint_every_steps=1000, num_train_steps=400, eval_every_steps=200,
             log_every_steps=10)
  workdir = str(tmp_path / "preempted")
  process = subprocess.Popen(_command(workdir, **run), cwd=REPO, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
  assert _wait_for(lambda: os.path.exists(os.path.join(workdir, "metrics.jsonl")), process)
  process.send_signal(signal.SIGTERM)
  _, stderr = process.communicate(timeout=120)
  assert process.returncode == 143, stderr
  step = checkpoint.latest_step(os.path.join(workdir, "checkpoints"))
  assert stderr.strip().splitlines()[-1].startswith(f"stopped by SIGTERM at step {step}: saved")
  assert 10 <= step < 400 and "Traceback" not in stderr
  # Resumed for a few steps past the saved one, against an uninterrupted run of as many (the
  # schedule is constant, so the run's length changes no step before it).
  run["num_train_steps"] = step + 10
  reference, reference_dir = _reference_run(tiny_config, tmp_path, **run)
  done = subprocess.run(_command(workdir, **run), cwd=REPO, capture_output=True, text=True)
  assert done.returncode == 0 and f"resumed from the checkpoint of step {step}" in done.stdout
  _assert_same_run(reference, reference_dir, workdir, step + 10)


@pytest.mark.slow
def test_nan_loss_stops_training_and_keeps_the_last_good_checkpoint(tiny, tmp_path):
  tiny_config = tiny("autoencoder")
  tiny_config.update(learning_rate=1e30, checkpoint_every_steps=1, num_devices=1)
  with pytest.raises(errors.TrainingDiverged, match=r"training diverged at step (\d+): ") as e:
    train_and_evaluate(tiny_config, str(tmp_path))
  bad_step = int(str(e.value).split("step ")[1].split(":")[0])
  assert "loss = nan" in str(e.value) or "loss = inf" in str(e.value)
  last = checkpoint.latest_step(str(tmp_path / "checkpoints"))
  assert last == bad_step - 1 and f"of step {last}, is kept" in str(e.value)
  good = load_run(str(tmp_path), last).state
  assert all(np.all(np.isfinite(leaf)) for leaf in jax.tree.leaves(good.opt_state))


def test_an_update_that_breaks_the_parameters_is_never_saved(tiny, tmp_path):
  # In float32 this learning rate is Inf: step 1's loss is finite, its update is not.
  tiny_config = tiny("autoencoder")
  tiny_config.update(learning_rate=1e39, checkpoint_every_steps=1, num_devices=1)
  with pytest.raises(errors.TrainingDiverged, match="step 1: a parameter became NaN or Inf in "
                     "its update; no checkpoint was saved before it"):
    train_and_evaluate(tiny_config, str(tmp_path))
  assert checkpoint.latest_step(str(tmp_path / "checkpoints")) is None


@pytest.mark.slow
def test_two_runs_with_one_seed_give_identical_metrics_and_parameters(trained_vqvae, tmp_path):
  a = trained_vqvae.workdir   # configs/tiny.py, 20 steps, trained in this process (conftest.py)
  done = subprocess.run(_command(tmp_path / "b"), cwd=REPO,  # the same config, in another
                        capture_output=True, text=True)
  assert done.returncode == 0, done.stderr
  strip = lambda rows: [{k: v for k, v in json.loads(r).items() if k != "images_per_sec"}
                        for r in rows]
  assert strip(_lines(a)) == strip(_lines(tmp_path / "b"))
  a, b = (load_run(str(path), 20).state for path in (a, tmp_path / "b"))
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


# ------------------------------------------------------------------ bad input


def _cli_error(args, workdir):
  done = subprocess.run([sys.executable, "train.py", f"--workdir={workdir}"] + args, cwd=REPO,
                        capture_output=True, text=True)
  lines = done.stderr.strip().splitlines()
  assert done.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), done.stderr
  return lines[0]


@pytest.mark.slow
@pytest.mark.parametrize("args,message", [
    (["--config=configs/tiny.py", "--config.no_such_key=1"], "the config has no key 'no_such_key'"),
    (["--config=configs/tiny.py", "--config.model.nope=1"], "the config has no key 'model.nope'"),
    (["--config=configs/tiny.py", "--config.batch_size=abc"], "--config.batch_size=abc: invalid"),
    (["--config=configs/no_such_config.py"], "config file 'configs/no_such_config.py' does not exist"),
    (["--config=configs/tiny.py", "--config.model.quantizer.num_codes=1"],
     "config.model.quantizer.num_codes=1: must be >= 2"),
    (["--config=configs/tiny.py:vae", "--config.model.latent_dim=0"],
     "config.model.latent_dim=0: must be >= 1"),
])
def test_command_line_mistakes_are_one_line_errors(tmp_path, args, message):
  assert message in _cli_error(args, tmp_path / "run")
  assert not os.path.exists(tmp_path / "run")


@pytest.mark.slow
def test_verbose_shows_the_traceback(tmp_path):
  done = subprocess.run([sys.executable, "train.py", f"--workdir={tmp_path}", "--verbose",
                         "--config=configs/tiny.py", "--config.model.embedding_dim=0"],
                        cwd=REPO, capture_output=True, text=True)
  assert done.returncode != 0 and "Traceback" in done.stderr and "ConfigError" in done.stderr


@pytest.mark.parametrize("overrides,error,message", [
    ({"batch_size": 12, "num_devices": 0}, errors.ConfigError,
     "does not divide evenly over 8 devices"),
    ({"model.quantizer.num_codes": 1}, errors.ConfigError, r"num_codes=1: must be >= 2"),
    ({"model.embedding_dim": 0}, errors.ConfigError, r"embedding_dim=0: must be >= 1"),
    ({"dataset": "npz:{tmp}/30x30.npz"}, errors.ConfigError, "multiples of 4; got 30x30"),
    ({"dataset": "no_such_data"}, errors.DatasetError, "unknown dataset 'no_such_data'"),
    ({"dataset": "cifar10", "data_dir": "/nonexistent"}, errors.DatasetError, "tfds build cifar10"),
    ({"batch_size": 80000}, errors.ConfigError, "exceeds the 60000 training examples"),
])
def test_bad_configs_are_user_errors_that_write_nothing(tiny_config, tmp_path, overrides, error,
                                                        message):
  np.savez(tmp_path / "30x30.npz",
           images=np.random.default_rng(0).integers(0, 256, (40, 30, 30), np.uint8))
  tiny_config.batch_size = 16
  for key, value in overrides.items():
    *parents, leaf = key.split(".")
    node = tiny_config
    for parent in parents:
      node = node[parent]
    node[leaf] = value.format(tmp=tmp_path) if isinstance(value, str) else value
  with pytest.raises(error, match=message):
    train_and_evaluate(tiny_config, str(tmp_path / "run"))
  assert not os.path.exists(tmp_path / "run")


@pytest.mark.slow
def test_a_workdir_of_another_config_is_refused_unless_overwrite(tiny, tiny_config, tmp_path):
  tiny_config.num_train_steps = 4
  train_and_evaluate(tiny_config, str(tmp_path))
  before = {f: open(tmp_path / f).read() for f in ("config.json", "metrics.jsonl")}
  autoencoder = tiny("autoencoder")
  autoencoder.num_train_steps = 4
  with pytest.raises(errors.RunError, match="holds a run of model 'vqvae', not 'autoencoder'"):
    train_and_evaluate(autoencoder, str(tmp_path))
  tiny_config.learning_rate = 0.1
  with pytest.raises(errors.RunError, match=r"different config \(learning_rate: 0.002 -> 0.1\)"):
    train_and_evaluate(tiny_config, str(tmp_path))
  assert before == {f: open(tmp_path / f).read() for f in before}
  tiny_config.num_train_steps = 6   # a longer run of the same config resumes
  tiny_config.learning_rate = 2e-3
  train_and_evaluate(tiny_config, str(tmp_path))
  tiny_config.learning_rate, tiny_config.overwrite = 0.1, True
  train_and_evaluate(tiny_config, str(tmp_path))
  rows = [json.loads(line) for line in _lines(tmp_path)]
  assert rows[0]["step"] == 5 and json.load(open(tmp_path / "config.json"))["learning_rate"] == 0.1


@pytest.mark.slow
def test_a_checkpoint_of_another_architecture_is_refused(tiny_config, trained_vqvae, tmp_path):
  workdir = tmp_path / "run"
  shutil.copytree(trained_vqvae.workdir, workdir)   # the session's run of tiny_config
  saved = json.load(open(workdir / "config.json"))   # as if jaxvq's architecture had changed
  saved["model"]["hidden"] = tiny_config.model.hidden = 8
  json.dump(saved, open(workdir / "config.json", "w"))
  with pytest.raises(errors.RunError, match="does not fit this model"):
    train_and_evaluate(tiny_config, str(workdir))
  with pytest.raises(errors.RunError, match="does not fit this model"):
    load_run(str(workdir))


@pytest.mark.slow
def test_a_prior_needs_a_vqvae_and_its_codes_k(tiny, tiny_config, tmp_path):
  from configs import pixelcnn_fashion_mnist  # pylint: disable=g-import-not-at-top
  from jaxvq.data import datasets  # pylint: disable=g-import-not-at-top
  fashion = datasets.load("fashion_mnist")   # a small part of it, quick to encode (3 times)
  np.savez(tmp_path / "small.npz", x_train=fashion.train.array[:256],
           x_test=fashion.test.array[:64])
  small = dict(dataset=f"npz:{tmp_path}/small.npz", num_eval_examples=0)
  autoencoder = tiny("autoencoder")
  autoencoder.update(small, num_train_steps=2)
  train_and_evaluate(autoencoder, str(tmp_path / "ae"))
  prior = pixelcnn_fashion_mnist.get_config()
  prior.dataset = f"codes:{tmp_path / 'ae'}"
  with pytest.raises(errors.DatasetError, match="no codes in .*: encode them first"):
    train_and_evaluate(prior, str(tmp_path / "prior"))
  with pytest.raises(errors.RunError, match="holds a run of model 'autoencoder', not a VQ-VAE"):
    encode_codes(str(tmp_path / "ae"))
  assert not os.path.exists(tmp_path / "prior")
  # A prior trained on K=16 codes, whose VQ-VAE was then retrained with K=8 and re-encoded.
  tiny_config.update(small, num_train_steps=2)
  train_and_evaluate(tiny_config, str(tmp_path / "vq"))
  encode_codes(str(tmp_path / "vq"))
  prior.update(dataset=f"codes:{tmp_path / 'vq'}", num_train_steps=2, batch_size=16,
               num_eval_examples=32)
  prior.model.update(channels=8, num_layers=2, head_channels=8, class_conditional=False)
  train_and_evaluate(prior, str(tmp_path / "prior"))
  # The VQ-VAE trained further and its codes re-encoded: the prior no longer matches them.
  tiny_config.num_train_steps = 4
  train_and_evaluate(tiny_config, str(tmp_path / "vq"))
  encode_codes(str(tmp_path / "vq"))
  stale = ("trained on the codes of the VQ-VAE's checkpoint of step 2, but .* now holds those "
           "of step 4")
  with pytest.raises(errors.RunError, match=stale):
    load_run(str(tmp_path / "prior"))
  prior.num_train_steps = 4   # resuming it on the new codes: refused, unless overwritten
  with pytest.raises(errors.RunError, match=stale + ".*or add --config.overwrite=True"):
    train_and_evaluate(prior, str(tmp_path / "prior"))
  tiny_config.update(overwrite=True)
  tiny_config.model.quantizer.num_codes = 8
  train_and_evaluate(tiny_config, str(tmp_path / "vq"))
  encode_codes(str(tmp_path / "vq"))
  with pytest.raises(errors.RunError, match="which now holds run [0-9a-f]{32}"):
    train_and_evaluate(prior, str(tmp_path / "prior"))
  prior.overwrite = True   # a new prior on the K=8 codes, in the same workdir
  train_and_evaluate(prior, str(tmp_path / "prior"))
  assert load_run(str(tmp_path / "prior")).model.num_codes == 8
