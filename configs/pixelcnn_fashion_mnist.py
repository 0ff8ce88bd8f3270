"""Gated PixelCNN prior over the codes of the Fashion-MNIST VQ-VAE (`make demo`'s run).

  python train.py --config=configs/pixelcnn_fashion_mnist.py \\
      --workdir=workdirs/pixelcnn_fashion_mnist --config.dataset=codes:workdirs/vqvae_fashion_mnist

Reaches 3.72 bits per code on the test split (README).

Class-conditional on the 10 labels; K and the 7x7 grid come from the codes.
"""
from jaxvq.config import get_config as base_config


def get_config():
  config = base_config("pixelcnn")
  config.dataset = "codes:workdirs/vqvae_fashion_mnist"
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
