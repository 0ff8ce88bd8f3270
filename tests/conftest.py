"""Simulate 8 devices on the CPU before JAX starts; put the repo on the path."""
import os
import sys

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from jaxvq.runtime.distributed import patient_cpu_collectives  # noqa: E402

patient_cpu_collectives()   # as train.py is: a loaded machine does not abort a test's step

import pytest  # noqa: E402


@pytest.fixture
def tiny():
  """tiny(model) -> configs/tiny.py's config of that model."""
  from configs import tiny as tiny_configs  # pylint: disable=g-import-not-at-top
  return tiny_configs.get_config


@pytest.fixture
def tiny_config(tiny):
  return tiny("vqvae")


@pytest.fixture
def experiment():
  """experiment(config) -> the Experiment of `config` on the data it names."""
  from jaxvq.train.experiment import setup  # pylint: disable=g-import-not-at-top
  from jaxvq.train.run import load_data  # pylint: disable=g-import-not-at-top
  return lambda config: setup(config, load_data(config))


@pytest.fixture
def assert_devices_agree(experiment):
  """assert_devices_agree(config, num_steps, atol=2e-6): the train step on 8 devices and on 1
  gives the same parameters, model state and metrics (to float rounding) after `num_steps`
  steps."""
  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  from jaxvq.train import steps  # pylint: disable=g-import-not-at-top

  def check(config, num_steps, atol=2e-6):
    assert jax.device_count() == 8, "tests run with --xla_force_host_platform_device_count=8"
    results = []
    for devices in (8, 1):
      config.num_devices = devices
      exp = experiment(config)
      step = steps.make_train_step(exp)
      state = exp.initial_state
      for s in range(num_steps):
        batch = steps.train_batch(exp, s)
        assert {shard.data.shape[0] for shard in batch[0].addressable_shards} == {
            config.batch_size // devices}
        state, metrics = step(state, batch)
      assert len(jax.tree.leaves(state.params)[0].sharding.device_set) == devices
      results.append(jax.device_get((state.params, state.model_state, metrics)))
    for a, b in zip(jax.tree.leaves(results[0]), jax.tree.leaves(results[1])):
      np.testing.assert_allclose(a, b, rtol=2e-4, atol=atol)

  return check


# ------------------------------------------------------------ trained runs, one per test session
# Trained once per pytest session (with pytest-xdist: once per worker) and shared by the tests
# that only read them. A test that changes a run copies it first (shutil.copytree to tmp_path).


@pytest.fixture(scope="session")
def trained_vqvae(tmp_path_factory):
  """The plain configs/tiny.py VQ-VAE trained on real Fashion-MNIST (20 steps, one device),
  with every split's codes encoded (WORKDIR/codes/). Tests compare their own runs of
  `tiny("vqvae")` against it, so its config stays exactly that one. Read only.

  Returns a SimpleNamespace: workdir, final (train_and_evaluate's metrics), codes
  (encode_codes' metadata).
  """
  import types  # pylint: disable=g-import-not-at-top
  import jaxvq  # pylint: disable=g-import-not-at-top
  from configs import tiny as tiny_configs  # pylint: disable=g-import-not-at-top
  workdir = str(tmp_path_factory.mktemp("trained_vqvae") / "run")
  final = jaxvq.train_and_evaluate(tiny_configs.get_config("vqvae"), workdir)
  return types.SimpleNamespace(workdir=workdir, final=final, codes=jaxvq.encode_codes(workdir))


@pytest.fixture(scope="session")
def trained_prior(trained_vqvae, tmp_path_factory):
  """A class-conditional PixelCNN prior on trained_vqvae's codes: configs/pixelcnn_fashion_mnist.py
  with tiny widths (8 channels, 2 layers, a 16-channel head), 30 steps at batch 16, evaluated on
  400 test grids. Read only.

  Returns a SimpleNamespace: workdir, final (train_and_evaluate's metrics), vqvae (the
  trained_vqvae namespace).
  """
  import types  # pylint: disable=g-import-not-at-top
  import jaxvq  # pylint: disable=g-import-not-at-top
  from configs import pixelcnn_fashion_mnist  # pylint: disable=g-import-not-at-top
  config = pixelcnn_fashion_mnist.get_config()
  config.dataset = f"codes:{trained_vqvae.workdir}"
  config.model.update(channels=8, num_layers=2, head_channels=16)
  config.update(batch_size=16, num_train_steps=30, log_every_steps=10, eval_every_steps=30,
                checkpoint_every_steps=30, num_eval_examples=400, eval_batch_size=200)
  workdir = str(tmp_path_factory.mktemp("trained_prior") / "run")
  final = jaxvq.train_and_evaluate(config, workdir)
  return types.SimpleNamespace(workdir=workdir, final=final, vqvae=trained_vqvae)


@pytest.fixture(scope="session", autouse=True)
def xla_compilation_cache(tmp_path_factory):
  """One XLA compilation cache per test process (each pytest-xdist worker its own folder, under
  pytest's temporary directory): the many tests that build the same tiny model compile its
  programs once. The tests' subprocesses compile for themselves. JAXVQ_TEST_XLA_CACHE=0 turns
  it off."""
  if os.environ.get("JAXVQ_TEST_XLA_CACHE", "1") == "0":
    yield None
    return
  import jax  # pylint: disable=g-import-not-at-top
  path = str(tmp_path_factory.mktemp("xla_cache"))
  options = {"jax_compilation_cache_dir": path,
             "jax_persistent_cache_min_compile_time_secs": 0.2,
             "jax_persistent_cache_min_entry_size_bytes": 0}
  saved = {name: getattr(jax.config, name) for name in options}
  for name, value in options.items():
    jax.config.update(name, value)
  yield path
  for name, value in saved.items():
    jax.config.update(name, value)
