"""A seconds-long run for tests and smoke checks, of any model:

  python train.py --config=configs/tiny.py:vae --workdir=/tmp/tiny_vae   (default: vqvae)
"""
from jaxvq.config import get_config as base_config


def get_config(model: str = "vqvae"):
  config = base_config(model)
  config.dataset = "fashion_mnist"
  m = config.model
  if model in ("autoencoder", "vae", "vqvae"):
    m.update(hidden=16, residual_hidden=8, num_residual_blocks=1)
  if model in ("autoencoder", "vae"):
    m.update(latent_dim=4, mlp_hidden=(32,))
  if model == "vae":
    m.importance_samples = 4
  if model == "vqvae":
    m.embedding_dim = 8
    m.quantizer.num_codes = 16
  if model == "pixelcnn":
    m.update(channels=8, num_layers=2, head_channels=16)
  config.batch_size = 16
  config.eval_batch_size = 200
  config.num_eval_examples = 400
  config.learning_rate = 2e-3
  config.num_train_steps = 20
  config.log_every_steps = 5
  config.eval_every_steps = 10
  config.checkpoint_every_steps = 10
  config.num_image_grid = 16
  config.num_devices = 1   # tests that need the whole mesh set 0 (all devices)
  return config
