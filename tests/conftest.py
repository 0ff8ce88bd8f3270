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
