"""Convolutional autoencoder on Fashion-MNIST, MSE loss, a 7x7x4 latent grid.

  python train.py --config=configs/ae_fashion_mnist.py --workdir=workdirs/ae_fashion_mnist

The autoencoder rows of docs/quality.md: its reconstructions, and its samples
from a diagonal Gaussian fitted to the training split's latents (an AE has no
prior of its own). The nets are the demo VQ-VAE's (hidden 64, residual_hidden 32).
"""
from jaxvq.config import get_config as base_config


def get_config():
  config = base_config("autoencoder")
  config.dataset = "fashion_mnist"
  config.model.hidden = 64
  config.model.residual_hidden = 32
  config.model.latent_dim = 4
  config.batch_size = 64
  config.learning_rate = 1e-3
  config.num_train_steps = 3000
  return config
