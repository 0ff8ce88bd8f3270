"""VQ-VAE on Fashion-MNIST: the default of `make demo` (a few minutes on 2 CPU cores).

The codebook is kept healthy by EMA updates, k-means initialisation from the
first 10 batches and dead-code restarts every 100 steps (jaxvq/codebook.py).
"""
from jaxvq.config_base import get_base_config


def get_config():
  config = get_base_config()
  config.dataset = "fashion_mnist"
  config.model.name = "vqvae"
  config.model.hidden = 64
  config.model.residual_hidden = 32
  config.model.num_codes = 512
  config.model.embedding_dim = 32
  config.model.codebook_update = "ema"
  config.model.kmeans_init_batches = 10
  config.model.restart_every_steps = 100
  config.model.dead_code_threshold = 1.0
  config.batch_size = 64
  config.learning_rate = 1e-3
  config.num_train_steps = 2000
  config.eval_every_steps = 1000
  config.checkpoint_every_steps = 1000
  config.log_every_steps = 100
  return config
