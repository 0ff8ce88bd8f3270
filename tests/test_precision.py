"""config.dtype = "bfloat16": bf16 nets, float32 parameters, optimizer state and latent math."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvq.train import load_run, train_and_evaluate
from jaxvq.train.metrics_writer import read_rows


def _train(config, workdir):
  train_and_evaluate(config, workdir)
  return read_rows(workdir)


@pytest.mark.slow
def test_bfloat16_training_lowers_the_loss_and_picks_the_float32_codes(tiny_config, experiment,
                                                                       tmp_path):
  tiny_config.update(num_train_steps=60, log_every_steps=20, eval_every_steps=60,
                     checkpoint_every_steps=60, num_devices=1)
  _train(tiny_config, str(tmp_path / "f32"))
  tiny_config.dtype = "bfloat16"
  rows = _train(tiny_config, str(tmp_path / "bf16"))
  train_loss = [r["loss"] for r in rows if r["split"] == "train"]
  assert train_loss[-1] < 0.9 * train_loss[0], train_loss   # real Fashion-MNIST

  run32 = load_run(str(tmp_path / "f32"))
  exp32, state = run32.experiment, run32.state
  exp16 = experiment(tiny_config)
  bf16_state = load_run(str(tmp_path / "bf16")).state
  assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(bf16_state.params))
  assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(bf16_state.opt_state)
             if jnp.issubdtype(leaf.dtype, jnp.floating))
  # The same (float32-trained) parameters, run in float32 and in bfloat16.
  model32, model16 = exp32.model(state), exp16.model(state)
  x = exp32.dataset.preprocess(exp32.dataset.test.inputs(np.arange(500)), None)
  assert model16.encoder.down1(x).dtype == jnp.bfloat16
  assert model16.encoder(x).dtype == jnp.float32   # the quantizer's inputs and distances
  codes32, codes16 = model32.encode_to_indices(x), model16.encode_to_indices(x)
  agreement = float(jnp.mean(codes32 == codes16))
  assert agreement > 0.95, agreement   # 0.997 when written
  assert float(jnp.mean(codes32 == jnp.roll(codes16, 1, axis=0))) < 0.5  # not agreeing by chance
