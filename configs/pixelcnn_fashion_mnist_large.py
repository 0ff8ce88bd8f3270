"""A larger, longer-trained prior over the demo VQ-VAE's codes (docs/quality.md): the prior of
configs/pixelcnn_fashion_mnist.py with 1.5x the channels and 2x the steps, the learning rate
decaying to 0 by a cosine.

  python train.py --config=configs/pixelcnn_fashion_mnist_large.py \\
      --workdir=workdirs/pixelcnn_fashion_mnist_large \\
      --config.dataset=codes:workdirs/vqvae_fashion_mnist
"""
from jaxvq.config import get_config as base_config


def get_config():
  config = base_config("pixelcnn")
  config.dataset = "codes:workdirs/vqvae_fashion_mnist"
  config.model.channels = 96
  config.model.num_layers = 8
  config.model.kernel_size = 3
  config.model.head_channels = 384
  config.model.class_conditional = True
  config.batch_size = 64
  config.learning_rate = 1e-3
  config.learning_rate_schedule = "cosine"
  config.num_train_steps = 3000
  config.eval_every_steps = 1000
  config.checkpoint_every_steps = 1000
  return config
