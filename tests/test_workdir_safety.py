"""The workdir is the user's: configs and paths are checked before anything is written, only
files jaxvq recorded are ever deleted, one trainer at a time, and a prior belongs to one exact
VQ-VAE run."""
import json
import math
import os
import re
import shutil
import socket
import subprocess
import sys

import numpy as np
import pytest

from jaxvq import errors, sampling
from jaxvq.tokens import provenance
from jaxvq.tokens.runs import encode_codes
from jaxvq.train import load_run, train_and_evaluate
from jaxvq.train import workdir as workdir_lib
from snapshots import snapshot

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))




def _set(config, key, value):
  *parents, leaf = key.split(".")
  node = config
  for parent in parents:
    node = node[parent]
  node[leaf] = value


def _short(tiny_config, steps=2):
  tiny_config.update(num_train_steps=steps, eval_every_steps=steps, checkpoint_every_steps=steps,
                     log_every_steps=steps, num_eval_examples=200)
  return tiny_config


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  """A finished 2-step tiny VQ-VAE run: its workdir (the tests below must leave it as it is)."""
  from configs import tiny  # pylint: disable=g-import-not-at-top
  workdir = str(tmp_path_factory.mktemp("trained") / "run")
  train_and_evaluate(_short(tiny.get_config("vqvae")), workdir)
  return workdir


def _run_cli(*args, timeout=180):
  env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=1"}
  return subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True,
                        timeout=timeout, env=env)


def _assert_one_line_error(result, cause):
  assert result.returncode == 2, result.stderr[-2000:]
  assert "Traceback" not in result.stderr
  errors_printed = [l for l in result.stderr.splitlines() if l.startswith("error:")]
  assert len(errors_printed) == 1 and re.search(cause, errors_printed[0]), result.stderr[-2000:]


# --------------------------------------------------------------------- config values, up front

BAD_VALUES = [
    ("log_every_steps", 0), ("eval_every_steps", 0), ("checkpoint_every_steps", 0),
    ("checkpoint_every_steps", -1), ("keep_checkpoints", -1), ("keep_checkpoints", 0),
    ("eval_batch_size", 0), ("eval_batch_size", -1), ("num_eval_examples", -1), ("seed", -1),
    ("model.hidden", 0), ("model.hidden", 1), ("num_image_grid", 0), ("num_image_grid", -1),
    ("model.quantizer.kmeans_init_batches", -1), ("num_devices", -1), ("num_train_steps", 0),
    ("num_train_steps", -1), ("batch_size", 0), ("learning_rate", -1e-3), ("learning_rate", 0.0),
    ("learning_rate", math.nan), ("learning_rate", math.inf), ("model.quantizer.ema_decay", 1.0),
    ("model.quantizer.ema_decay", -0.1), ("model.quantizer.commitment_cost", math.nan),
    ("model.quantizer.commitment_cost", -0.25), ("model.quantizer.num_codes", 1),
    ("dtype", "float16"), ("learning_rate_schedule", "linear"),
]


@pytest.mark.parametrize("key,value", BAD_VALUES)
def test_a_bad_config_value_is_refused_before_overwrite_deletes_anything(trained, tiny_config,
                                                                           key, value):
  before = snapshot(trained)
  _short(tiny_config).overwrite = True
  tiny_config.learning_rate = 0.01   # a different config: overwrite would clear the run
  _set(tiny_config, key, value)
  with pytest.raises(errors.ConfigError, match=re.escape(f"config.{key}={value!r}: must be")):
    train_and_evaluate(tiny_config, trained)
  assert snapshot(trained) == before


@pytest.mark.slow
def test_the_command_line_refuses_a_bad_value_in_one_line_and_keeps_the_old_run(trained):
  before = snapshot(trained)
  result = _run_cli("train.py", "--config=configs/tiny.py", f"--workdir={trained}",
                    "--config.overwrite=True", "--config.eval_batch_size=0")
  _assert_one_line_error(result, r"config\.eval_batch_size=0: must be >= 1")
  assert snapshot(trained) == before


# --------------------------------------------------------------------- workdir paths

def test_workdir_paths_that_cannot_hold_a_run_are_refused_before_anything_is_written(
    tiny_config, tmp_path):
  (tmp_path / "a_file").write_text("mine")
  before = snapshot(tmp_path)
  for workdir, cause in (("", "--workdir is empty"),
                         ("   ", "--workdir is empty"),
                         (str(tmp_path / "a_file"), "a_file is a file, not a directory"),
                         (str(tmp_path / "a_file" / "run"), "lies under .*a_file, which is a file"),
                         (str(tmp_path / "a_file" / "x" / "run"), "lies under .*a_file, which")):
    with pytest.raises(errors.RunError, match=cause):
      train_and_evaluate(tiny_config, workdir)
    assert snapshot(tmp_path) == before and sorted(os.listdir(tmp_path)) == ["a_file"]


def test_a_read_only_workdir_is_refused(tiny_config, tmp_path, monkeypatch):
  (tmp_path / "ro").mkdir()
  real_access = os.access
  monkeypatch.setattr(os, "access", lambda path, mode: False if str(path).endswith("ro") else
                      real_access(path, mode))
  for workdir, cause in ((tmp_path / "ro", "the workdir is read-only"),
                         (tmp_path / "ro" / "new" / "run", r"its parent .*ro is read-only")):
    with pytest.raises(errors.RunError, match=f"cannot write in .*: {cause}"):
      train_and_evaluate(tiny_config, str(workdir))
  assert os.listdir(tmp_path / "ro") == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a directory of mode 0o555")
def test_a_directory_of_mode_555_is_refused(tiny_config, tmp_path):
  (tmp_path / "ro").mkdir()
  os.chmod(tmp_path / "ro", 0o555)
  try:
    with pytest.raises(errors.RunError, match="read-only"):
      train_and_evaluate(tiny_config, str(tmp_path / "ro"))
    assert os.listdir(tmp_path / "ro") == []
  finally:
    os.chmod(tmp_path / "ro", 0o755)


def test_a_full_disk_while_claiming_is_one_line_naming_the_workdir(tiny_config, tmp_path,
                                                                   monkeypatch):
  import errno  # pylint: disable=g-import-not-at-top
  from jaxvq.runtime import files  # pylint: disable=g-import-not-at-top

  def full(path, text):
    raise OSError(errno.ENOSPC, "No space left on device", path)

  monkeypatch.setattr(files, "write_atomically", full)
  with pytest.raises(errors.RunError, match=f"cannot write in {tmp_path}/run: no space left"):
    train_and_evaluate(_short(tiny_config), str(tmp_path / "run"))
  assert not os.path.exists(tmp_path / "run" / "config.json")


# --------------------------------------------------------------------- the user's files

@pytest.mark.parametrize("files", [{"notes.txt": "mine"}, {".hidden": ""},
                                   {"config.json": '{"learning_rate": 1}'},
                                   {"config.json": "not json"},
                                   {"sub/deep.txt": "mine"}])
def test_a_directory_of_the_users_files_is_refused_and_left_alone(tiny_config, tmp_path, files):
  workdir = tmp_path / "mine"
  for name, text in files.items():
    (workdir / name).parent.mkdir(parents=True, exist_ok=True)
    (workdir / name).write_text(text)
  before = snapshot(workdir)
  top = sorted({name.split("/")[0] for name in files})
  for overwrite in (False, True):
    tiny_config.overwrite = overwrite
    with pytest.raises(errors.RunError, match=re.escape(
        f"{workdir} holds files jaxvq did not write: {', '.join(top)}; give an empty or new")):
      train_and_evaluate(_short(tiny_config), str(workdir))
    assert snapshot(workdir) == before and sorted(os.listdir(workdir)) == top   # no lock either


def test_overwrite_deletes_only_what_jaxvq_recorded_and_starts_a_new_run(trained, tiny_config,
                                                                         tmp_path):
  workdir = tmp_path / "run"
  shutil.copytree(trained, workdir)
  _short(tiny_config)
  record = json.loads((workdir / ".jaxvq").read_text())
  assert len(record["run_id"]) == 32 and record["jaxvq_version"]
  events = [n for n in os.listdir(workdir) if n.startswith("events.out.tfevents.")]
  assert events and set(events) <= set(record["files"])   # the event files it opened
  assert {"checkpoints", "config.json", "metrics.jsonl", "images"} <= set(record["files"])
  # The user's files, one of them named like jaxvq's own event files.
  (workdir / "notes.txt").write_text("mine")
  (workdir / "events.out.tfevents.1.users_host").write_text("mine")
  tiny_config.update(learning_rate=0.01, overwrite=True)
  train_and_evaluate(tiny_config, str(workdir))
  names = set(os.listdir(workdir))
  assert {"notes.txt", "events.out.tfevents.1.users_host"} <= names
  assert not set(events) & names   # the old run's event files are gone
  assert (workdir / "notes.txt").read_text() == "mine"
  new_record = json.loads((workdir / ".jaxvq").read_text())
  assert new_record["run_id"] != record["run_id"]
  assert "events.out.tfevents.1.users_host" not in new_record["files"]
  assert json.loads((workdir / "config.json").read_text())["learning_rate"] == 0.01
  assert not (workdir / ".overwritten").exists()


def test_a_workdir_of_an_earlier_jaxvq_is_claimed_with_its_run_files_recorded(
    trained, tiny_config, tmp_path):
  workdir = tmp_path / "run"
  shutil.copytree(trained, workdir)
  _short(tiny_config)
  os.remove(workdir / ".jaxvq")   # as an earlier jaxvq left it
  (workdir / "notes.txt").write_text("mine")
  tiny_config.num_train_steps = 3   # resumes
  train_and_evaluate(tiny_config, str(workdir))
  record = json.loads((workdir / ".jaxvq").read_text())
  assert "notes.txt" not in record["files"] and "checkpoints" in record["files"]
  assert load_run(str(workdir)).step == 3 and (workdir / "notes.txt").read_text() == "mine"


def test_data_and_runs_are_kept_apart(tiny_config, tmp_path):
  np.savez(tmp_path / "data.npz", images=np.zeros((40, 28, 28), np.uint8))
  (tmp_path / "images").mkdir()
  before = snapshot(tmp_path)
  for dataset, workdir, cause in (
      (f"npz:{tmp_path}/data.npz", tmp_path, f"the dataset {tmp_path}/data.npz lies inside the "
                                             f"workdir {tmp_path}"),
      (f"npz:{tmp_path}/data.npz", f"{tmp_path}/../{tmp_path.name}", "lies inside the workdir"),
      (f"folder:{tmp_path}/images", tmp_path, "lies inside the workdir"),
      (f"folder:{tmp_path}/images", tmp_path / "images" / "run",
       f"the workdir {tmp_path}/images/run lies inside the image folder {tmp_path}/images"),
      (f"folder:{tmp_path}/images", tmp_path / "images", "lies inside the workdir"),
      (f"codes:{tmp_path}/vq", tmp_path / "vq", "a prior trains in a workdir of its own")):
    tiny_config.dataset = dataset
    with pytest.raises(errors.RunError, match=re.escape(cause)):
      train_and_evaluate(tiny_config, str(workdir))
  assert snapshot(tmp_path) == before and sorted(os.listdir(tmp_path)) == ["data.npz", "images"]


# --------------------------------------------------------------------- one trainer at a time

def test_a_second_trainer_is_refused_at_once_naming_the_first(trained, tiny_config):
  before = snapshot(trained)
  _short(tiny_config).num_train_steps = 3   # would resume
  with workdir_lib.lock(trained):
    with pytest.raises(errors.RunError, match=re.escape(
        f"{trained} is in use by process {os.getpid()} on {socket.gethostname()} (its lock "
        f"{trained}/.lock): wait for it to finish, or use another --workdir")):
      train_and_evaluate(tiny_config, trained)
    with pytest.raises(errors.RunError, match="is in use by process"):
      encode_codes(trained)
  assert snapshot(trained) == before


@pytest.mark.slow
def test_the_lock_of_a_killed_process_is_released(trained):
  holder = subprocess.Popen(
      [sys.executable, "-c", "import sys, time\nfrom jaxvq.train import workdir\n"
       f"with workdir.lock({trained!r}):\n  print('locked', flush=True)\n  time.sleep(600)"],
      cwd=REPO, stdout=subprocess.PIPE, text=True)
  try:
    assert holder.stdout.readline().strip() == "locked"
    with pytest.raises(errors.RunError, match=f"in use by process {holder.pid} on"):
      with workdir_lib.lock(trained):
        pass
  finally:
    holder.kill()
    holder.wait()
  with workdir_lib.lock(trained):   # the kernel released it with the process
    pass


# --------------------------------------------------------------------- a prior's VQ-VAE run

def _prior(vq_dir):
  from configs import pixelcnn_fashion_mnist  # pylint: disable=g-import-not-at-top
  prior = pixelcnn_fashion_mnist.get_config()
  prior.update(dataset=f"codes:{vq_dir}", num_train_steps=2, batch_size=16, num_eval_examples=32,
               eval_every_steps=2, checkpoint_every_steps=2, log_every_steps=2, num_devices=1)
  prior.model.update(channels=8, num_layers=2, head_channels=8, class_conditional=False)
  return prior


def _refuses_another_checkpoint_of_its_step(tmp_path, vq_dir, prior_dir):
  """As if the prior had learned the codes of another checkpoint of step 2 of the same run."""
  paths = (tmp_path / "prior" / "tokenizer.json", tmp_path / "vq" / "codes" / "metadata.json")
  originals = [path.read_text() for path in paths]
  record, metadata = (json.loads(text) for text in originals)
  record["checksum"] = metadata["checksum"] = "0" * 64
  paths[0].write_text(json.dumps(record))
  paths[1].write_text(json.dumps(metadata))
  with pytest.raises(errors.RunError, match=re.escape(
      f"in {vq_dir}, whose checkpoint of step 2 is no longer the same (its checksum differs)")):
    sampling.sample_images(prior_dir, num_samples=2)
  metadata["checksum"] = "1" * 64   # codes of yet another checkpoint: refused at load
  paths[1].write_text(json.dumps(metadata))
  with pytest.raises(errors.RunError, match="its checksum differs"):
    load_run(prior_dir)
  for path, text in zip(paths, originals):
    path.write_text(text)


@pytest.mark.slow
def test_a_prior_refuses_a_retrained_vqvae_of_the_same_steps(tiny_config, tmp_path):
  from jaxvq.data import datasets  # pylint: disable=g-import-not-at-top
  fashion = datasets.load("fashion_mnist")   # a small part of it, quick to encode
  np.savez(tmp_path / "small.npz", x_train=fashion.train.array[:256],
           x_test=fashion.test.array[:64])
  vq_dir, prior_dir = str(tmp_path / "vq"), str(tmp_path / "prior")
  _short(tiny_config).update(dataset=f"npz:{tmp_path}/small.npz", num_eval_examples=0)
  train_and_evaluate(tiny_config, vq_dir)
  metadata = encode_codes(vq_dir)
  run_id = json.loads((tmp_path / "vq" / ".jaxvq").read_text())["run_id"]
  assert metadata["run_id"] == run_id and metadata["step"] == 2 and metadata["checksum"]
  prior = _prior(vq_dir)
  train_and_evaluate(prior, prior_dir)
  record = provenance.read_record(prior_dir)
  assert (record["run_id"], record["step"], record["checksum"], record["workdir"]) == (
      run_id, 2, metadata["checksum"], vq_dir)
  assert "vqvae_run_id" not in load_run(prior_dir).config.model   # its architecture only
  sampling.sample_images(prior_dir, num_samples=2)   # its own VQ-VAE: fine
  _refuses_another_checkpoint_of_its_step(tmp_path, vq_dir, prior_dir)
  # The VQ-VAE's workdir retrained from scratch, for as many steps.
  tiny_config.update(learning_rate=0.01, overwrite=True)
  train_and_evaluate(tiny_config, vq_dir)
  new_id = json.loads((tmp_path / "vq" / ".jaxvq").read_text())["run_id"]
  assert new_id != run_id and not (tmp_path / "vq" / "codes").exists()
  prior_before = snapshot(prior_dir)
  message = re.escape(f"this prior was trained on codes of VQ-VAE run {run_id} (step 2) in "
                      f"{vq_dir}, which now holds run {new_id}: train a new prior on its codes")
  with pytest.raises(errors.RunError, match=message):
    sampling.sample_images(prior_dir, num_samples=2)
  assert not (tmp_path / "vq" / "codes").exists()   # nothing was re-encoded behind the user
  prior.num_train_steps = 4   # resuming the prior: its codes would come from the new run
  with pytest.raises(errors.RunError, match=message):
    train_and_evaluate(prior, prior_dir)
  encode_codes(vq_dir)   # even with the new run's codes in place
  with pytest.raises(errors.RunError, match=message):
    load_run(prior_dir)
  with pytest.raises(errors.RunError, match=message):
    train_and_evaluate(prior, prior_dir)
  assert snapshot(prior_dir) == prior_before


@pytest.mark.slow
def test_a_damaged_record_or_codes_file_is_one_line_naming_it(tiny_config, tmp_path):
  from jaxvq.data import datasets  # pylint: disable=g-import-not-at-top
  fashion = datasets.load("fashion_mnist")
  np.savez(tmp_path / "small.npz", x_train=fashion.train.array[:128],
           x_test=fashion.test.array[:32])
  vq_dir, prior_dir = str(tmp_path / "vq"), str(tmp_path / "prior")
  _short(tiny_config).update(dataset=f"npz:{tmp_path}/small.npz", num_eval_examples=0)
  train_and_evaluate(tiny_config, vq_dir)
  encode_codes(vq_dir)
  train_and_evaluate(_prior(vq_dir), prior_dir)
  rebuild = re.escape(f"write them again with `python -m jaxvq encode --workdir={vq_dir}`")
  for name, damage in (("metadata.json", lambda t: t[:len(t) // 2]),
                       ("metadata.json", lambda t: t.replace('"num_codes"', '"k"')),
                       ("train.npz", lambda t: t[:len(t) // 2]),
                       ("test.npz", lambda t: t[:-3] + b"xyz"),
                       ("test.npz", None)):
    path = tmp_path / "vq" / "codes" / name
    original = path.read_bytes()
    if damage is None:
      path.unlink()
    elif name.endswith(".json"):
      path.write_text(damage(original.decode()))
    else:
      path.write_bytes(damage(original))
    with pytest.raises(errors.DatasetError, match=re.escape(str(path)) + r" is damaged \(.*\): "
                       + rebuild):
      load_run(prior_dir)
    path.write_bytes(original)
  record = tmp_path / "prior" / "tokenizer.json"
  record.write_text(record.read_text()[:10])
  with pytest.raises(errors.RunError, match=re.escape(str(record)) + r" is damaged .*train a new "
                     "prior"):
    sampling.sample_images(prior_dir, num_samples=2)


# --------------------------------------------------------------------- sample --output

@pytest.mark.slow
def test_sample_output_is_checked_before_sampling(tmp_path):
  (tmp_path / "out").mkdir()
  assert sampling.output_path(str(tmp_path / "out")) == str(tmp_path / "out" / "samples.png")
  assert sampling.output_path(str(tmp_path / "a.PNG")) == str(tmp_path / "a.PNG")
  assert sampling.output_path("samples.png") == "samples.png"
  for output, cause in ((str(tmp_path / "samples"), "is not a .png file"),
                        (str(tmp_path / "a.jpg"), "is not a .png file"),
                        ("", "--output is empty"),
                        (str(tmp_path / "missing" / "a.png"), "missing does not exist")):
    with pytest.raises(sampling.SampleError, match=re.escape(cause)):
      sampling.output_path(output)
  result = _run_cli("-m", "jaxvq", "sample", f"--workdir={tmp_path}/no_prior",
                    f"--output={tmp_path}/samples")
  _assert_one_line_error(result, r"--output=.*samples is not a \.png file")
  assert sorted(os.listdir(tmp_path)) == ["out"]
