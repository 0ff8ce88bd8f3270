"""Simulate 8 devices on the CPU before JAX starts; put the repo on the path."""
import os
import sys

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

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
