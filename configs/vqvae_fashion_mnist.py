"""VQ-VAE on Fashion-MNIST: the default of `make demo` (a few minutes on 2 CPU cores)."""
from jaxvq.config_base import get_base_config


def get_config():
  config = get_base_config()
  config.dataset = "fashion_mnist"
  config.model.name = "vqvae"
  config.model.hidden = 64
  config.model.residual_hidden = 32
  config.model.num_codes = 512
  config.model.embedding_dim = 32
  config.batch_size = 64
  config.learning_rate = 1e-3
  config.num_train_steps = 2000
  config.eval_every_steps = 1000
  config.checkpoint_every_steps = 1000
  config.log_every_steps = 100
  return config
