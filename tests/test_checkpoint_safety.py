"""Damaged checkpoints, a full disk and Ctrl-C: one line, the right exit, saved files untouched."""
import errno
import glob
import os
import shutil
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from jaxvq import errors
from jaxvq.train import checkpoint, train_and_evaluate
from jaxvq.train.checkpoint import saved_checksum
from snapshots import snapshot

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Checkpoints at 2, 4, 6 and 8, the last three kept: a damaged 8 resumes from 6.
RUN = {"num_train_steps": 8, "checkpoint_every_steps": 2, "log_every_steps": 2,
       "eval_every_steps": 8, "num_eval_examples": 200, "num_devices": 1, "keep_checkpoints": 3}
LAST, PREVIOUS = 8, 6


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
  """The workdir of an uninterrupted RUN (copy it before changing it)."""
  from configs import tiny  # pylint: disable=g-import-not-at-top
  config = tiny.get_config()
  config.update(RUN)
  workdir = str(tmp_path_factory.mktemp("finished") / "run")
  train_and_evaluate(config, workdir)
  return config, workdir


@pytest.fixture
def run_copy(finished_run, tmp_path):
  config, workdir = finished_run
  copy = str(tmp_path / "run")
  shutil.copytree(workdir, copy)
  return config.copy_and_resolve_references(), copy


def _file_hashes(directory):
  """Each file under `directory` (relative path) -> the SHA-256 of its bytes."""
  return snapshot(directory, folders=False)


def _checkpoints(workdir):
  return os.path.join(workdir, "checkpoints")




def _step_files(workdir, step):
  return {k: v for k, v in _file_hashes(_checkpoints(workdir)).items()
          if k.split(os.sep)[0] == str(step)}


def _largest_data_file(step_dir):
  return max(glob.glob(os.path.join(step_dir, "default", "**", "d", "*"), recursive=True),
             key=os.path.getsize)


def _delete_data_file(step_dir):
  os.remove(_largest_data_file(step_dir))


def _truncate_data_file(step_dir):
  path = _largest_data_file(step_dir)
  os.truncate(path, os.path.getsize(path) // 2)


def _change_a_value(step_dir):
  """Bytes changed so that Orbax reads them without complaint: the step's state written again
  by Orbax with one parameter's value changed. (Flipping bytes in a data file is caught by the
  decompressor only when they land in a compressed chunk, which depends on the file's layout.)"""
  item = os.path.join(step_dir, "default")
  checkpointer = ocp.StandardCheckpointer()
  state = checkpointer.restore(item)
  path, leaf = jax.tree_util.tree_flatten_with_path(state)[0][0]
  leaf = np.array(leaf)
  leaf.flat[0] += 1.0
  rewritten = item + ".rewritten"
  checkpointer.save(rewritten, jax.tree_util.tree_map_with_path(
      lambda p, x: leaf if p == path else x, state))
  checkpointer.wait_until_finished()
  shutil.rmtree(item)
  os.replace(rewritten, item)


DAMAGES = {
    "data_file_missing": (_delete_data_file, "cannot be read"),
    "data_file_truncated": (_truncate_data_file, "cannot be read"),
    "metadata_missing": (lambda d: os.remove(os.path.join(d, "default", "_METADATA")),
                         "_METADATA is missing"),
    "checkpoint_metadata_missing": (lambda d: os.remove(os.path.join(d, "_CHECKPOINT_METADATA")),
                                    "_CHECKPOINT_METADATA is missing"),
    "manifest_missing": (lambda d: os.remove(os.path.join(d, "default", "manifest.ocdbt")),
                         "cannot be read"),
    "bytes_changed": (_change_a_value, "does not match its checksum"),
    "checksum_file_missing": (lambda d: os.remove(d + checkpoint.CHECKSUM_SUFFIX),
                              "checksum file"),
}


def test_a_run_keeps_one_checksum_per_listed_checkpoint(finished_run, experiment):
  config, workdir = finished_run
  directory = _checkpoints(workdir)
  steps = checkpoint.saved_steps(directory)
  assert steps == [4, 6, 8]  # Orbax lists the steps as without the checksum files
  assert sorted(glob.glob(os.path.join(directory, "*" + checkpoint.CHECKSUM_SUFFIX))) == [
      os.path.join(directory, f"{s}{checkpoint.CHECKSUM_SUFFIX}") for s in steps]
  assert saved_checksum(directory, 2) is None  # removed with its checkpoint
  reader = checkpoint.Checkpointer(directory, read_only=True)
  abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, experiment(config).initial_state)
  state = reader.manager.restore(LAST, args=ocp.args.StandardRestore(abstract))
  reader.close()
  assert saved_checksum(directory, LAST) == checkpoint.state_checksum(state)


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_a_damaged_latest_checkpoint_resumes_from_the_previous_one(run_copy, damage, capsys,
                                                                   finished_run):
  config, workdir = run_copy
  corrupt, reason = DAMAGES[damage]
  directory = _checkpoints(workdir)
  corrupt(os.path.join(directory, str(LAST)))
  damaged_files = _step_files(workdir, LAST)
  intact = {k: v for k, v in _file_hashes(directory).items() if not k.startswith(str(LAST))}
  if damage == "bytes_changed":  # Orbax reads it without complaint: only the checksum can tell
    reader = checkpoint.Checkpointer(directory, read_only=True)
    reader.manager.restore(LAST, args=ocp.args.StandardRestore())
    reader.close()

  train_and_evaluate(config, workdir)

  out, err = capsys.readouterr()
  warnings = [line for line in err.splitlines() if line.startswith("warning:")]
  assert len(warnings) == 1, err
  assert warnings[0].startswith(f"warning: the checkpoint of step {LAST} in {directory} is "
                                f"damaged (")
  assert reason in warnings[0] and warnings[0].endswith(f"resuming from step {PREVIOUS}")
  assert "Traceback" not in err
  assert f"resumed from the checkpoint of step {PREVIOUS}" in out
  # The resume is exact, so the step trained again is the uninterrupted run's, bit for bit.
  assert saved_checksum(directory, LAST) == saved_checksum(_checkpoints(finished_run[1]), LAST)
  # The damaged checkpoint is kept aside as it was; the intact ones are untouched.
  [aside] = glob.glob(os.path.join(directory, f"damaged.{LAST}.*[0-9]"))
  assert {os.path.join(str(LAST), k) for k in _file_hashes(aside)} == {
      k for k in damaged_files if not k.endswith(checkpoint.CHECKSUM_SUFFIX)}
  assert all(damaged_files[os.path.join(str(LAST), k)] == v for k, v in _file_hashes(aside).items())
  after = _file_hashes(directory)
  assert all(after[k] == v for k, v in intact.items())


def test_no_intact_checkpoint_stops_with_a_line_naming_the_damaged_ones(run_copy):
  config, workdir = run_copy
  directory = _checkpoints(workdir)
  for step in (4, 6, 8):
    os.remove(os.path.join(directory, str(step), "default", "_METADATA"))
  before = _file_hashes(workdir)
  with pytest.raises(errors.RunError) as e:
    train_and_evaluate(config, workdir)
  message = str(e.value)
  assert message.startswith(f"no checkpoint in {directory} is intact: step 8 (")
  assert all(f"step {s} (" in message for s in (4, 6, 8)) and "\n" not in message
  assert "--config.overwrite=True" in message and "delete" not in message
  assert _file_hashes(workdir) == before


def test_checkpoints_without_checksums_from_an_earlier_jaxvq_are_accepted(run_copy, capsys):
  config, workdir = run_copy
  for path in glob.glob(os.path.join(_checkpoints(workdir), "*" + checkpoint.CHECKSUM_SUFFIX)):
    os.remove(path)
  train_and_evaluate(config, workdir)
  out, err = capsys.readouterr()
  assert f"resumed from the checkpoint of step {LAST}" in out and "warning" not in err


def _cli_train(config, workdir):
  """Trains through the command line's error handling (`jaxvq.cli.run`): the exit status."""
  from jaxvq import cli  # pylint: disable=g-import-not-at-top
  with pytest.raises(SystemExit) as e:
    cli.run(lambda argv: train_and_evaluate(config, workdir), ["jaxvq train"])
  return e.value.code


def _disk_full(*args, **kwargs):
  raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _without_last_checkpoint(workdir):
  """The workdir as a run killed after its checkpoint of PREVIOUS left it."""
  directory = _checkpoints(workdir)
  shutil.rmtree(os.path.join(directory, str(LAST)))
  os.remove(os.path.join(directory, f"{LAST}{checkpoint.CHECKSUM_SUFFIX}"))


# train.py with Orbax's writes of its metadata files failing as on a full disk: a subprocess,
# so that what Orbax's threads print reaches stderr as a user would see it.
FULL_DISK_TRAIN = """
import errno, os, sys
from orbax.checkpoint._src.path import async_path
async def write_text(path, text):
  raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
async_path.write_text = write_text
from jaxvq.__main__ import main
main([sys.argv[0], "train"] + sys.argv[1:])
"""


@pytest.mark.slow
def test_a_full_disk_while_saving_a_checkpoint_is_one_line_and_keeps_the_others(run_copy):
  _, workdir = run_copy
  _without_last_checkpoint(workdir)
  before = _file_hashes(_checkpoints(workdir))
  done = subprocess.run(
      [sys.executable, "-c", FULL_DISK_TRAIN, "--config=configs/tiny.py", f"--workdir={workdir}"]
      + [f"--config.{k}={v}" for k, v in RUN.items()],
      cwd=REPO, capture_output=True, text=True, timeout=300)
  assert done.returncode == 2, done.stderr
  assert done.stderr.strip().splitlines() == [
      f"error: no space left on device while writing {_checkpoints(workdir)}: free space on "
      f"that disk, or train in a --workdir on another one, then rerun the same command to "
      f"resume (what was saved before is intact)"], done.stderr
  assert checkpoint.saved_steps(_checkpoints(workdir)) == [4, PREVIOUS]
  after = _file_hashes(_checkpoints(workdir))
  assert all(after.get(k) == v for k, v in before.items())


def test_a_full_disk_while_writing_metrics_is_one_line_and_keeps_the_checkpoints(
    run_copy, monkeypatch, capfd):
  from jaxvq.train import metrics_writer  # pylint: disable=g-import-not-at-top
  config, workdir = run_copy
  _without_last_checkpoint(workdir)
  before = _file_hashes(_checkpoints(workdir))

  def open_metrics(path, mode="r", *args, **kwargs):
    if mode == "a":
      _disk_full()
    return open(path, mode, *args, **kwargs)

  monkeypatch.setattr(metrics_writer, "open", open_metrics, raising=False)
  status = _cli_train(config, workdir)
  err = capfd.readouterr().err
  assert status == 2, err
  assert err.strip() == (f"error: no space left on device while writing "
                         f"{os.path.join(workdir, 'metrics.jsonl')}: free space on that disk, or "
                         f"train in a --workdir on another one, then rerun the same command to "
                         f"resume (what was saved before is intact)")
  assert _file_hashes(_checkpoints(workdir)) == before


@pytest.mark.slow
def test_ctrl_c_saves_the_current_step_exits_130_and_the_rerun_resumes(tiny_config, tmp_path,
                                                                      capsys):
  run = dict(RUN, num_train_steps=1000, checkpoint_every_steps=5, log_every_steps=5,
             eval_every_steps=1000)
  workdir = str(tmp_path / "interrupted")
  directory = _checkpoints(workdir)
  process = subprocess.Popen(
      [sys.executable, "train.py", "--config=configs/tiny.py", f"--workdir={workdir}"]
      + [f"--config.{k}={v}" for k, v in run.items()],
      cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
  deadline = time.time() + 120
  while not (os.path.isdir(directory) and any(d.isdigit() for d in os.listdir(directory))):
    assert process.poll() is None and time.time() < deadline, process.stderr.read()
    time.sleep(0.01)
  # The saved checkpoints' files: a checkpoint Orbax is still writing (STEP.orbax-checkpoint-tmp)
  # is renamed when it finishes, so it is not one of them.
  before = {k: v for k, v in _file_hashes(directory).items()
            if "orbax-checkpoint-tmp" not in k.split(os.sep)[0]}
  assert before   # at least the finished checkpoint the loop above waited for
  process.send_signal(signal.SIGINT)
  _, stderr = process.communicate(timeout=120)
  assert process.returncode == 130, stderr
  step = checkpoint.latest_step(directory)
  assert stderr.strip().splitlines() == [
      f"stopped by SIGINT at step {step}: saved its checkpoint in {workdir}; rerun the same "
      f"command to resume"]
  assert 5 <= step < 1000
  after = _file_hashes(directory)
  assert all(after[k] == v for k, v in before.items())

  # The rerun resumes; a few steps past the saved one show it trains on from there (the whole
  # 1000 steps would only add checkpoint writes).
  tiny_config.update(run, num_train_steps=step + 5)
  train_and_evaluate(tiny_config, workdir)
  assert f"resumed from the checkpoint of step {step}" in capsys.readouterr().out
  assert checkpoint.latest_step(directory) == step + 5
