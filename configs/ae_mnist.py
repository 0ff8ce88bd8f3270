"""Convolutional autoencoder on MNIST, MSE loss, a 7x7x4 latent grid."""
from jaxvq.config_base import get_base_config


def get_config():
  config = get_base_config()
  config.dataset = "mnist"
  config.model.name = "autoencoder"
  config.model.hidden = 64
  config.model.latent_dim = 4
  config.batch_size = 64
  config.learning_rate = 1e-3
  config.num_train_steps = 3000
  return config
