"""jaxvq export: a tokenizer's encode and decode and a prior's sample as jax.export files, run
by docs/export.md's example in a process where jaxvq cannot be imported, giving the runs' own
outputs bit for bit on CPU; and what it refuses, before writing anything."""
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from jaxvq import errors, export, sampling
from jaxvq.train import load_run

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Run before the docs' example: jaxvq (installed editable in the venv) cannot be imported.
WITHOUT_JAXVQ = """
import sys
class NoJaxvq:
  def find_spec(self, name, path=None, target=None):
    if name.split(".")[0] == "jaxvq":
      raise ImportError("jaxvq is not importable in this process")
sys.meta_path.insert(0, NoJaxvq())
try:
  import jaxvq
except ImportError:
  pass
else:
  raise SystemExit("jaxvq was importable")
"""
# Run after it: what the example computed, for the test to compare.
SAVE_OUTPUTS = """
import numpy
for name in ("codes", "reconstructions", "samples"):
  numpy.save(name + ".npy", numpy.asarray(globals()[name]))
assert not [m for m in sys.modules if m.split(".")[0] == "jaxvq"]
"""


def _docs_example() -> str:
  """The first Python block of docs/export.md: loading and calling the files with jax alone."""
  with open(os.path.join(REPO, "docs", "export.md")) as f:
    return re.search(r"```python\n(.*?)```", f.read(), re.S).group(1)


def _command(*args):
  return subprocess.run([sys.executable, "-m", "jaxvq", "export", *args], cwd=REPO,
                        capture_output=True, text=True)


@pytest.mark.slow
def test_the_docs_example_without_jaxvq_gives_the_runs_outputs_bit_for_bit(trained_prior,
                                                                            tmp_path):
  tokenizer_dir, prior_dir = trained_prior.vqvae.workdir, trained_prior.workdir
  done = _command(f"--workdir={tokenizer_dir}", f"--output={tmp_path / 'tokenizer'}",
                  "--platforms=cpu,cuda,tpu")
  assert done.returncode == 0, done.stderr
  assert done.stdout.startswith(f"wrote {tmp_path / 'tokenizer'}: encode.jaxexport")
  manifest = export.export_run(prior_dir, str(tmp_path / "prior"), platforms=["cpu"])
  with open(tmp_path / "tokenizer" / export.MANIFEST) as f:
    tokenizer_manifest = json.load(f)
  run = load_run(tokenizer_dir)
  assert tokenizer_manifest["run"]["checksum"] == run.checksum == manifest["tokenizer"]["checksum"]
  assert tokenizer_manifest["functions"]["encode"]["inputs"][0]["shape"] == ["b", 28, 28, 1]
  assert tokenizer_manifest["functions"]["decode"]["outputs"][0]["shape"] == ["b", 28, 28, 1]
  assert manifest["functions"]["sample"]["inputs"][1] == {
      "name": "labels", "shape": ["b"], "dtype": "int32", "min": 0, "max": 9}

  images = run.experiment.dataset.test.inputs(np.arange(5)).astype(np.float32) / 255.0
  np.save(tmp_path / "images.npy", images)
  env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "XLA_", "JAX"))}
  env.update(XLA_FLAGS=manifest["cpu_xla_flags"], JAX_PLATFORMS="cpu")
  # -I: neither the repo, nor the working directory, nor PYTHONPATH is on the path.
  done = subprocess.run([sys.executable, "-I", "-c",
                         WITHOUT_JAXVQ + _docs_example() + SAVE_OUTPUTS],
                        cwd=tmp_path, env=env, capture_output=True, text=True)
  assert done.returncode == 0, done.stderr

  codes = np.asarray(run.jit(lambda model, x: model.encode_to_indices(x))(images))
  reconstructions = np.asarray(run.jit(lambda model, c: model.decode_from_indices(c))(codes))
  samples, _, _ = sampling.sample_images(prior_dir, 8, seed=0)
  for name, ours in (("codes", codes), ("reconstructions", reconstructions),
                     ("samples", samples)):
    theirs = np.load(tmp_path / f"{name}.npy")
    assert theirs.dtype == ours.dtype and np.array_equal(theirs, ours), name


def _untrained(config, workdir: str, model: str = "vqvae") -> str:
  """A workdir holding `config`'s config.json (as model `model`) and no checkpoint."""
  os.makedirs(workdir)
  config.model.name = model
  with open(os.path.join(workdir, "config.json"), "w") as f:
    f.write(config.to_json_best_effort())
  return workdir


def _refused(match, *args, **kwargs):
  with pytest.raises(errors.UserError, match=match):
    export.export_run(*args, **kwargs)


def test_refusals_come_before_anything_is_written(tiny_config, tmp_path):
  workdir, output = _untrained(tiny_config, str(tmp_path / "run")), str(tmp_path / "out")
  _refused("platforms must be among cpu, cuda, rocm, tpu; got gpu", workdir, output,
           platforms=["cpu", "gpu"])
  _refused("batch must be at least 1", workdir, output, batch=0)
  _refused("has no checkpoint yet: train it first", workdir, output)
  _refused("sampling options apply to a prior", workdir, output, top_k=3)
  _refused("holds a run of model 'vae': export serves a tokenizer",
           _untrained(tiny_config, str(tmp_path / "vae"), "vae"), output)
  os.makedirs(output)
  with open(os.path.join(output, "notes.txt"), "w") as f:
    f.write("the user's")
  _refused("holds files that are not a jaxvq export of this run: notes.txt", workdir, output)
  _refused("is a file", workdir, os.path.join(output, "notes.txt"))
  assert os.listdir(output) == ["notes.txt"]
  assert sorted(os.listdir(tmp_path)) == ["out", "run", "vae"]   # no temporary directory left


@pytest.mark.slow
def test_a_damaged_checkpoint_is_refused(trained_vqvae, tmp_path):
  workdir = str(tmp_path / "damaged")
  shutil.copytree(trained_vqvae.workdir, workdir)
  checkpoints = os.path.join(workdir, "checkpoints")
  step = max(int(n) for n in os.listdir(checkpoints) if n.isdigit())
  path = os.path.join(checkpoints, f"{step}.sha256.json")
  with open(path) as f:
    record = json.load(f)
  record["sha256"] = "0" * 64   # the state no longer matches it, as if its bytes had changed
  with open(path, "w") as f:
    json.dump(record, f)
  _refused(f"the checkpoint of step {step} in .* is damaged", workdir, str(tmp_path / "out"))
  assert not os.path.exists(tmp_path / "out")


@pytest.mark.slow
def test_an_export_replaces_its_own_run_only(trained_vqvae, tmp_path, monkeypatch):
  output = str(tmp_path / "out")
  export.export_run(trained_vqvae.workdir, output, platforms=["cpu"], batch=4)
  first = export.read_manifest(output)
  assert first["functions"]["encode"]["inputs"][0]["shape"] == [4, 28, 28, 1]

  def killed(tmp, path):
    raise KeyboardInterrupt   # as if stopped with the new files written, before the rename
  with monkeypatch.context() as patch:
    patch.setattr(export.files, "publish_dir", killed)
    with pytest.raises(KeyboardInterrupt):
      export.export_run(trained_vqvae.workdir, output, platforms=["cpu"])
  assert export.read_manifest(output) == first and sorted(os.listdir(tmp_path)) == ["out"]
  export.export_run(trained_vqvae.workdir, output, platforms=["cpu"])   # the same run: replaced
  assert export.read_manifest(output)["functions"]["encode"]["inputs"][0]["shape"][0] == "b"
  assert sorted(os.listdir(output)) == ["decode.jaxexport", "encode.jaxexport", "manifest.json"]
  assert sorted(os.listdir(tmp_path)) == ["out"]

  other = str(tmp_path / "other")   # another run: a copy of the workdir under a new run id
  shutil.copytree(trained_vqvae.workdir, other)
  with open(os.path.join(other, ".jaxvq")) as f:
    record = json.load(f)
  with open(os.path.join(other, ".jaxvq"), "w") as f:
    json.dump({**record, "run_id": "another"}, f)
  _refused("holds the export of another run", other, output)
  with open(os.path.join(output, "README"), "w") as f:
    f.write("the user's")
  _refused("holds files that are not a jaxvq export of this run: README",
           trained_vqvae.workdir, output)
  assert "README" in os.listdir(output)


@pytest.mark.slow
def test_the_command_reports_a_refusal_in_one_line(tmp_path):
  done = _command(f"--workdir={tmp_path}", f"--output={tmp_path / 'out'}", "--platforms=gpu")
  assert done.returncode == 2
  assert done.stderr.strip() == ("error: --platforms must be among cpu, cuda, rocm, tpu; got gpu")
