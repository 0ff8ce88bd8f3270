"""The gated PixelCNN prior (jaxvq/priors/pixelcnn.py): causal with no blind spot, its samplers
deterministic and equal, its refusals; and the whole pipeline, images -> VQ-VAE -> codes ->
prior -> `jaxvq sample`, on real Fashion-MNIST."""
import os
import re
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvq import sampling
from jaxvq.errors import DatasetError, RunError
from jaxvq.registry import build_model
from jaxvq.runtime import sharding, xla_options
from jaxvq.tokens import codes
from jaxvq.tokens.runs import encode_codes
from jaxvq.train import train_and_evaluate

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _prior_config(tiny, num_classes=0):
  cfg = tiny("pixelcnn").model
  cfg.num_codes, cfg.channels, cfg.num_layers, cfg.head_channels = 5, 8, 3, 16
  cfg.class_conditional, cfg.num_classes, cfg.image_dims = bool(num_classes), num_classes, 784
  return cfg


@pytest.mark.parametrize("num_classes", [0, 3])
def test_prior_logits_depend_only_on_earlier_positions_and_see_no_blind_spot(tiny, num_classes):
  prior = build_model(_prior_config(tiny, num_classes), (5, 6), seed=0)
  embedded = jax.random.normal(jax.random.key(0), (1, 5, 6, 8))
  labels = jnp.array([1]) if num_classes else None
  jacobian = jax.jit(jax.jacrev(lambda e: prior.logits_from_embeddings(e, labels)))(embedded)
  dependence = np.abs(np.asarray(jacobian)).sum(axis=(0, 3, 4, 7))        # [5, 6 | 5, 6]
  for i in range(5):
    for j in range(6):
      later = np.zeros((5, 6), bool)
      later.reshape(-1)[i * 6 + j:] = True
      assert not np.any(dependence[i, j][later]), f"position {(i, j)} sees itself or a later code"
      if j > 0:
        assert dependence[i, j, i, j - 1] > 0, f"{(i, j)} misses its left neighbour"
      if i > 0:
        for jj in range(6):  # the whole row above, right of j included (the blind spot)
          if abs(jj - j) <= 2:
            assert dependence[i, j, i - 1, jj] > 0, f"{(i, j)} misses {(i - 1, jj)}"


@pytest.mark.slow
@pytest.mark.parametrize("kernel_size", [3, 5])
def test_compiled_sampling_is_deterministic_and_equals_the_python_loop(tiny, kernel_size):
  config = _prior_config(tiny, 3)
  config.kernel_size = kernel_size
  prior = build_model(config, (4, 5), seed=0)
  labels = jnp.full((6,), 2)

  mesh = sharding.make_mesh(1)

  class Exp:  # what the samplers need of an experiment
    initial_state = None
    model = staticmethod(lambda state: prior)
    jit_model = staticmethod(lambda fn: xla_options.jit(lambda state, *a: fn(prior, *a), mesh))
  fast = xla_options.jit(lambda key: prior.sample(key, 6, labels, temperature=0.8), mesh)
  a, b = fast(jax.random.key(7)), fast(jax.random.key(7))
  np.testing.assert_array_equal(a, b)
  assert not np.array_equal(a, fast(jax.random.key(8)))
  assert a.shape == (6, 4, 5) and int(a.max()) < 5
  assert sampling.sampler_names(prior) == (
      "compiled_loop", "compiled_loop_without_cache", "python_loop")
  for how in sampling.sampler_names(prior):
    np.testing.assert_array_equal(
        a, sampling.sample_codes(Exp, None, jax.random.key(7), 6, 2, temperature=0.8, how=how), how)
  np.testing.assert_array_equal(sampling.sample_labels(prior, 5), [0, 1, 2, 0, 1])


@pytest.mark.slow
def test_pipeline_from_images_to_samples_on_fashion_mnist(trained_prior, tmp_path):
  # The session's runs (tests/conftest.py): tiny VQ-VAE -> encode -> prior on its codes.
  vqvae_dir, prior_dir = trained_prior.vqvae.workdir, trained_prior.workdir
  metadata = trained_prior.vqvae.codes
  assert metadata["num_codes"] == 16 and metadata["grid_shape"] == [7, 7] and metadata["step"] == 20
  data = codes.load(vqvae_dir)
  assert data.train.array.dtype == np.uint8 and data.train.array.shape == (60000, 7, 7)
  assert data.num_classes == 10 and data.test.label_array.shape == (10000,)

  final = trained_prior.final   # configs/pixelcnn_fashion_mnist.py, narrow, 30 steps
  assert 0 < final["bits_per_code"] < np.log2(16)   # better than uniform over K
  np.testing.assert_allclose(final["bits_per_image_dim"], final["bits_per_code"] * 49 / 784, rtol=1e-5)

  output = str(tmp_path / "samples.png")
  cmd = [sys.executable, "-m", "jaxvq", "sample", f"--workdir={prior_dir}", "--num_samples=8",
         "--label=3", "--seed=1", f"--output={output}"]
  subprocess.run(cmd, cwd=REPO, check=True, capture_output=True)
  first = np.load(str(tmp_path / "samples.npy"))
  assert first.shape == (8, 7, 7) and os.path.exists(output)
  subprocess.run(cmd, cwd=REPO, check=True, capture_output=True)
  np.testing.assert_array_equal(first, np.load(str(tmp_path / "samples.npy")))
  bad = subprocess.run(cmd[:-4] + ["--num_samples=0"], cwd=REPO, capture_output=True, text=True)
  assert bad.returncode != 0 and "--num_samples must be at least 1" in bad.stderr
  bad = subprocess.run(cmd[:-4] + ["--label=10"], cwd=REPO, capture_output=True, text=True)
  assert bad.returncode != 0 and "--label must be in [0, 10)" in bad.stderr


def test_bad_sampling_requests_are_refused(tiny):
  prior = build_model(_prior_config(tiny, 3), (4, 4), seed=0)
  for args, message in [((0, None), "^num_samples must be at least 1"),
                        ((4, 3), r"^label must be in \[0, 3\)"),
                        ((4, None, 0.0), "^temperature must be positive")]:
    with pytest.raises(sampling.SampleError, match=message):
      sampling.check_request(prior, *args)
  unconditional = build_model(_prior_config(tiny), (4, 4), seed=0)
  with pytest.raises(sampling.SampleError, match="not class-conditional"):
    sampling.check_request(unconditional, 4, 1)


def test_prior_without_a_vqvae_checkpoint_is_a_clear_error(tiny_config, experiment, tmp_path):
  from configs import pixelcnn_fashion_mnist  # pylint: disable=g-import-not-at-top
  config = pixelcnn_fashion_mnist.get_config()
  config.dataset = f"codes:{tmp_path}"
  with pytest.raises(DatasetError, match=re.escape(
      f"no codes in {tmp_path}/codes: encode them first with `python -m jaxvq encode "
      f"--workdir={tmp_path}`")):
    experiment(config)
  with pytest.raises(RunError, match="holds no run"):
    encode_codes(str(tmp_path))
  with open(tmp_path / "config.json", "w") as f:
    f.write(tiny_config.to_json())
  with pytest.raises(RunError, match="has no checkpoint yet"):
    encode_codes(str(tmp_path))
