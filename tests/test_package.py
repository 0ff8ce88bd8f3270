"""jaxvq as an installed package: its public API from outside the repository, the `jaxvq`
command, and workdirs written by an earlier jaxvq resuming under today's."""
import inspect
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import jaxvq
from jaxvq.data import datasets
from jaxvq.tokens import provenance
from jaxvq.train import load_run, train_and_evaluate

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OLD_WORKDIRS = os.path.join(REPO, "tests", "data", "v0.1_workdirs")

# Trains a tiny VQ-VAE on real Fashion-MNIST, encodes its codes, trains a prior, samples.
API_SCRIPT = """
import json, sys
import numpy as np
import jaxvq
assert jaxvq.__file__.startswith(sys.argv[1]), jaxvq.__file__
config = jaxvq.get_config("vqvae")
config.model.update(hidden=16, residual_hidden=8, num_residual_blocks=1, embedding_dim=8)
config.model.quantizer.num_codes = 16
config.update(batch_size=16, num_train_steps=6, log_every_steps=3, eval_every_steps=6,
              checkpoint_every_steps=6, num_eval_examples=64, eval_batch_size=64)
metrics = jaxvq.train_and_evaluate(config, "vq")
run = jaxvq.load_run("vq")
images = jaxvq.load_dataset("fashion_mnist").test.inputs(np.arange(4)) / 255.0
indices = run.model.encode_to_indices(images)
decoded = run.model.decode_from_indices(indices)
metadata = jaxvq.encode_codes("vq")
prior = jaxvq.get_config("pixelcnn")
prior.model.update(channels=8, num_layers=2, head_channels=8)
prior.update(dataset="codes:vq", batch_size=16, num_train_steps=4, log_every_steps=2,
             eval_every_steps=4, checkpoint_every_steps=4, num_eval_examples=64,
             eval_batch_size=64)
prior_metrics = jaxvq.train_and_evaluate(prior, "prior")
pictures, codes, _ = jaxvq.sample_images("prior", num_samples=3, seed=1)
print(json.dumps({"all": jaxvq.__all__, "usage": metrics["codebook_usage"],
                  "indices": list(indices.shape), "decoded": list(decoded.shape),
                  "grid": metadata["grid_shape"], "bits_per_code": prior_metrics["bits_per_code"],
                  "pictures": list(pictures.shape), "codes": list(codes.shape),
                  "range": [float(pictures.min()), float(pictures.max())]}))
"""


@pytest.mark.slow
def test_the_installed_package_trains_and_samples_from_outside_the_repository(tmp_path):
  site = tmp_path / "site"
  install = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                            "--no-build-isolation", f"--target={site}", REPO],
                           capture_output=True, text=True)
  assert install.returncode == 0, install.stderr[-3000:]
  work = tmp_path / "elsewhere"
  work.mkdir()
  env = {**os.environ, "PYTHONPATH": str(site), "XLA_FLAGS": ""}
  done = subprocess.run([sys.executable, "-c", API_SCRIPT, str(site)], cwd=work, env=env,
                        capture_output=True, text=True)
  assert done.returncode == 0, done.stderr[-3000:]
  result = json.loads(done.stdout.strip().splitlines()[-1])
  assert result["all"] == jaxvq.__all__
  assert result["indices"] == [4, 7, 7] and result["decoded"] == [4, 28, 28, 1]
  assert result["grid"] == [7, 7] and 0 < result["bits_per_code"] < 4   # log2 16 = 4 bits
  assert result["pictures"] == [3, 28, 28, 1] and result["codes"] == [3, 7, 7]
  assert 0.0 <= result["range"][0] <= result["range"][1] <= 1.0
  # The console script, installed beside the package.
  usage = subprocess.run([str(site / "bin" / "jaxvq")], cwd=work, env=env, capture_output=True,
                         text=True)
  assert usage.returncode == 2 and "train" in usage.stderr and "sample" in usage.stderr


def test_every_public_name_has_a_docstring_with_its_contract():
  for name in jaxvq.__all__:
    obj = getattr(jaxvq, name)
    doc = inspect.getdoc(obj) or ""
    assert doc, f"jaxvq.{name} has no docstring"
    if inspect.isfunction(obj):
      assert "Returns" in doc or "->" in doc, f"jaxvq.{name}'s docstring says nothing it returns"
  for method in ("encode_to_indices", "decode_from_indices"):
    doc = inspect.getdoc(getattr(jaxvq.VQVAE, method))
    assert "Args:" in doc and "Returns:" in doc and "[B, h, w]" in doc


def _old_workdirs(tmp_path):
  """The v0.1 workdirs in tmp_path, their paths filled in, and the small dataset they read."""
  root = tmp_path / "old"
  shutil.copytree(OLD_WORKDIRS, root)
  fashion = datasets.load("fashion_mnist")
  np.savez(root / "small.npz", x_train=fashion.train.array[:256], x_test=fashion.test.array[:64])
  for path in ("vqvae/config.json", "prior/config.json", "vqvae/codes/metadata.json"):
    text = (root / path).read_text().replace("ROOT", str(root))
    (root / path).write_text(text)
  return root


@pytest.mark.slow
def test_workdirs_of_jaxvq_0_1_resume_and_sample(tmp_path):
  root = _old_workdirs(tmp_path)
  old = json.loads((root / "vqvae" / "config.json").read_text())
  assert "num_codes" in old["model"] and "latent_dim" in old["model"]   # the flat namespace
  run = load_run(str(root / "vqvae"))
  assert run.step == 4 and run.config.model.quantizer.num_codes == 16
  assert "latent_dim" not in run.config.model   # an autoencoder's key, never read by a VQ-VAE
  # Resumed under today's config of the same run (its file's keys, in sections).
  config = run.config.copy_and_resolve_references()
  config.num_train_steps = 6
  metrics = train_and_evaluate(config, str(root / "vqvae"))
  assert load_run(str(root / "vqvae")).step == 6 and 0 < metrics["codebook_usage"] <= 1
  # The prior of the old VQ-VAE checkpoint (step 4) still samples through it.
  pictures, codes, _ = jaxvq.sample_images(str(root / "prior"), num_samples=2)
  assert pictures.shape == (2, 28, 28, 1) and codes.shape == (2, 7, 7)
  prior = load_run(str(root / "prior"))
  assert prior.config.dataset == f"codes:{root / 'vqvae'}" and "vqvae_step" not in prior.config.model
  record = provenance.read_record(str(root / "prior"))   # from its config.json (jaxvq/compat.py)
  assert (record["workdir"], record["step"], record["run_id"]) == (str(root / "vqvae"), 4, None)


def test_a_changed_key_the_model_never_reads_does_not_refuse_a_resume(tmp_path):
  root = _old_workdirs(tmp_path)
  saved = json.loads((root / "vqvae" / "config.json").read_text())
  saved["model"]["latent_dim"] = 99             # an AE/VAE key in the old flat namespace
  saved["model"]["importance_samples"] = 7
  (root / "vqvae" / "config.json").write_text(json.dumps(saved))
  config = load_run(str(root / "vqvae")).config.copy_and_resolve_references()
  config.num_train_steps = 5
  train_and_evaluate(config, str(root / "vqvae"))
  saved["model"]["hidden"] = 32                 # a key it reads: a different run
  (root / "vqvae" / "config.json").write_text(json.dumps(saved))
  with pytest.raises(jaxvq.RunError, match=r"model.hidden: 32 -> 16"):
    train_and_evaluate(config, str(root / "vqvae"))
