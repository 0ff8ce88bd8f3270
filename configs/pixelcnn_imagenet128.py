"""Gated PixelCNN prior over the 32x32 code grids of the ImageNet VQ-VAE
(configs/vqvae_imagenet128.py), conditioned on the 1,000 classes.

  python -m jaxvq encode --workdir=workdirs/vqvae_imagenet128
  python train.py --config=configs/pixelcnn_imagenet128.py --workdir=workdirs/pixelcnn_imagenet128

The paper's ImageNet prior is a larger gated PixelCNN (its exact size is not given); this one
has 20 gated layers of 256 channels with 5x5 kernels, whose receptive field covers the grid.
Sampling a 32x32 grid takes 1,024 sequential steps: the row-cached sampler
(jaxvq/sampling.py) recomputes only the current row of every layer at each step. Not
measured where jaxvq is developed (no ImageNet there).
"""
from jaxvq.config import get_config as base_config


def get_config():
  config = base_config("pixelcnn")
  config.dataset = "codes:workdirs/vqvae_imagenet128"
  m = config.model
  m.channels = 256
  m.num_layers = 20
  m.kernel_size = 5
  m.head_channels = 1024
  m.class_conditional = True
  config.batch_size = 128
  config.eval_batch_size = 256
  config.num_eval_examples = 10000
  config.learning_rate = 3e-4
  config.num_train_steps = 200000
  config.log_every_steps = 500
  config.eval_every_steps = 10000
  config.checkpoint_every_steps = 5000
  return config
