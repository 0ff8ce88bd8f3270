"""Convolutional autoencoder on MNIST, MSE loss, a 7x7x4 latent grid.

  python train.py --config=configs/ae_mnist.py --workdir=workdirs/ae_mnist
"""
from jaxvq.config import get_config as base_config


def get_config():
  config = base_config("autoencoder")
  config.dataset = "mnist"
  config.model.hidden = 64
  config.model.latent_dim = 4
  config.batch_size = 64
  config.learning_rate = 1e-3
  config.num_train_steps = 3000
  return config
