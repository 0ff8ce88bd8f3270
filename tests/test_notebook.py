"""notebooks/jaxvq_colab.ipynb runs top to bottom, headless, in smoke mode on real Fashion-MNIST."""
import json
import os

import nbformat
import pytest
from nbclient import NotebookClient

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOK = os.path.join(REPO, "notebooks", "jaxvq_colab.ipynb")


@pytest.mark.slow
def test_colab_notebook_runs_in_smoke_mode(tmp_path, monkeypatch):
  monkeypatch.setenv("JAXVQ_SMOKE", "1")
  monkeypatch.setenv("JAXVQ_WORKDIR", str(tmp_path))
  monkeypatch.delenv("XLA_FLAGS")   # the kernel sees one CPU device, as a Colab user's does
  notebook = nbformat.read(NOTEBOOK, as_version=4)
  NotebookClient(notebook, timeout=300, kernel_name="python3",
                 resources={"metadata": {"path": REPO}}).execute()
  outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
  assert not [o for o in outputs if o.output_type == "error"]
  assert sum("image/png" in o.get("data", {}) for o in outputs) >= 5   # recon, usage, 2 samples, curves
  text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
  assert "smoke run" in text and "bits per code" in text
  with open(tmp_path / "vqvae" / "codes" / "metadata.json") as f:
    assert json.load(f)["num_codes"] == 32
  assert os.path.exists(tmp_path / "curves.png")
  assert os.path.exists(tmp_path / "prior" / "checkpoints" / "30")
  assert os.path.exists(tmp_path / "transformer" / "checkpoints" / "30")   # sampled with guidance
