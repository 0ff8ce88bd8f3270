"""The demo VQ-VAE (configs/vqvae_fashion_mnist.py) with MaskGIT's entropy loss on its codes.

  python train.py --config=configs/vqvae_entropy_fashion_mnist.py --workdir=workdirs/vqvae_entropy
"""
import os

from jaxvq.config import load_file


def get_config():
  config = load_file(os.path.join(os.path.dirname(__file__), "vqvae_fashion_mnist.py"))
  config.model.quantizer.update(entropy_loss_weight=0.1, entropy_temperature=0.01)
  return config
