"""Gated PixelCNN prior over the codes of the Fashion-MNIST VQ-VAE (`make demo`'s run).

  python train.py --config=configs/pixelcnn_fashion_mnist.py --workdir=PRIOR_DIR \\
      --config.vqvae_workdir=workdirs/vqvae_fashion_mnist

Class-conditional on the 10 labels; K and the 7x7 grid come from the codes.
"""
from jaxvq.config_base import get_base_config


def get_config():
  config = get_base_config()
  config.vqvae_workdir = "workdirs/vqvae_fashion_mnist"
  config.model.name = "pixelcnn"
  config.model.channels = 64
  config.model.num_layers = 8
  config.model.kernel_size = 3
  config.model.head_channels = 256
  config.model.class_conditional = True
  config.batch_size = 64
  config.learning_rate = 1e-3
  config.num_train_steps = 1500
  config.eval_every_steps = 500
  config.checkpoint_every_steps = 500
  return config
