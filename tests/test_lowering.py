"""Every compiled function of every config in configs/ lowers for cpu, cuda and tpu
(jaxvq.runtime.lowering): exported with jax.export on abstract arguments of the config's
shapes, on the 8 simulated CPU devices where the config uses them all. A config added to
configs/ is checked without a change here, and the functions follow from its model."""
import os

import jax
import jax.numpy as jnp
import pytest

from jaxvq import config as config_lib
from jaxvq import sampling
from jaxvq.models.vqvae import VQVAE
from jaxvq.priors.base import Prior
from jaxvq.runtime import lowering
from jaxvq.tokens.tokenizer import Tokenizer

CONFIGS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs")


def _failures(exp) -> dict:
  return {f.name: lowering.failures(f) for f in lowering.functions(exp)}


@pytest.mark.parametrize("path", lowering.config_files(CONFIGS),
                         ids=lambda p: os.path.basename(p)[:-3])
def test_every_compiled_function_of_the_config_lowers_for_every_platform(path):
  exp = lowering.experiment(lowering.narrow(config_lib.load_file(path)), CONFIGS)
  found = _failures(exp)
  assert {name: why for name, why in found.items() if why} == {}
  model = exp.model(exp.initial_state)
  expected = {"train_step", "eval_step"}
  if isinstance(model, Tokenizer):
    expected |= {"encode", "decode"}
  if isinstance(model, Prior):
    expected |= {f"sample:{how}" for how in sampling.sampler_names(model)}
  assert expected <= set(found)


def test_a_prior_lowers_on_the_grid_and_codes_of_its_tokenizers_config():
  config = config_lib.load_file(os.path.join(CONFIGS, "maskgit_imagenet128.py"))
  exp = lowering.experiment(lowering.narrow(config), CONFIGS)
  prior = exp.model(exp.initial_state)
  assert prior.grid_shape == (32, 32) and prior.num_codes == 512   # configs/vqvae_imagenet128.py
  assert exp.mesh.size == jax.device_count() == 8


def test_a_function_with_cpu_only_code_is_reported_with_the_platforms_it_misses(tiny,
                                                                                monkeypatch):
  """A decoder whose last step has a CPU branch and no other (as if ops/conv_kernels.py's
  `platform_dependent` lost its default): only `decode` fails, for cuda and tpu."""
  decode = VQVAE.decode_from_indices

  def decode_on_cpu_only(self, indices):
    return jax.lax.platform_dependent(decode(self, indices),
                                      cpu=lambda images: jnp.clip(images, 0.0, 1.0))

  monkeypatch.setattr(VQVAE, "decode_from_indices", decode_on_cpu_only)
  found = _failures(lowering.experiment(tiny("vqvae")))
  assert {name for name, why in found.items() if why} == {"decode"}
  assert set(found["decode"]) == {"cuda", "tpu"}
  assert all("not found for platform" in why for why in found["decode"].values())
