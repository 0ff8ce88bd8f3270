"""Gated PixelCNN prior over the codes of the CIFAR-10 VQ-VAE (configs/vqvae_cifar10.py).

A larger prior for the 8x8 grid of K=512 codes, class-conditional. CIFAR-10
cannot be downloaded where jaxvq is developed: this is a recipe, not a
measured result.
"""
from jaxvq.config import get_config as base_config


def get_config():
  config = base_config("pixelcnn")
  config.dataset = "codes:workdirs/vqvae_cifar10"
  config.model.channels = 128
  config.model.num_layers = 15
  config.model.kernel_size = 5
  config.model.head_channels = 512
  config.model.class_conditional = True
  config.batch_size = 32
  config.learning_rate = 3e-4
  config.num_train_steps = 100000
  config.eval_every_steps = 5000
  config.checkpoint_every_steps = 5000
  return config
