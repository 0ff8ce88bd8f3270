"""TensorBoard event files beside metrics.jsonl, and the curves of jaxvq.plot."""
import glob
import os
import struct
import subprocess
import sys

import pytest
from PIL import Image
from tensorboardX.proto import event_pb2

from jaxvq import figures
from jaxvq.train import train_and_evaluate
from jaxvq.train.metrics_writer import read_rows

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _events(workdir):
  """Every Event in the workdir's event files (TFRecord: length, crc, data, crc)."""
  events = []
  for path in sorted(glob.glob(os.path.join(workdir, "events.out.tfevents.*"))):
    with open(path, "rb") as f:
      data = f.read()
    offset = 0
    while offset < len(data):
      (length,) = struct.unpack("<Q", data[offset:offset + 8])
      events.append(event_pb2.Event.FromString(data[offset + 12:offset + 12 + length]))
      offset += 12 + length + 4
  return events


@pytest.mark.slow
def test_tensorboard_has_every_metric_and_the_images_and_a_resume_purges(tiny_config, tmp_path):
  tiny_config.update(num_train_steps=10, log_every_steps=5, eval_every_steps=10,
                     checkpoint_every_steps=5)
  train_and_evaluate(tiny_config, str(tmp_path))
  values = {(v.tag, e.step) for e in _events(tmp_path) for v in e.summary.value}
  assert {("train/loss", 5), ("train/loss", 10), ("test/loss", 10), ("test/perplexity", 10),
          ("test/codebook_usage", 10), ("test/reconstructions", 10)} <= values
  image = next(v.image for e in _events(tmp_path) for v in e.summary.value
               if v.tag == "test/reconstructions")
  assert image.height > 28 and image.width > 28
  # Resumed from step 10: TensorBoard is told to drop whatever was logged after it.
  tiny_config.num_train_steps = 15
  train_and_evaluate(tiny_config, str(tmp_path))
  starts = [e.step for e in _events(tmp_path) if e.session_log.status == e.session_log.START]
  assert 11 in starts


@pytest.mark.slow
def test_plot_overlays_runs_and_explains_a_missing_workdir(tiny_config, tmp_path):
  tiny_config.update(num_train_steps=10, log_every_steps=5, eval_every_steps=5)
  for name in ("a", "b"):
    train_and_evaluate(tiny_config, str(tmp_path / name))
    tiny_config.learning_rate = 1e-2
  output = str(tmp_path / "curves.png")
  panels = figures.plot_runs({name: read_rows(str(tmp_path / name)) for name in ("a", "b")},
                             output)
  assert panels == ["loss", "normalized_mse", "perplexity", "codebook_usage"]
  assert Image.open(output).size[0] > 4 * 300
  done = subprocess.run([sys.executable, "-m", "jaxvq", "plot", f"--workdir={tmp_path / 'none'}"],
                        cwd=REPO, capture_output=True, text=True)
  assert done.returncode == 2 and done.stderr.startswith("error: ") and "no metrics.jsonl" in done.stderr
