"""The demo VQ-VAE (configs/vqvae_fashion_mnist.py) with the rotation trick (Fifty et al. 2024).

  python train.py --config=configs/vqvae_rotation_fashion_mnist.py --workdir=workdirs/vqvae_rotation
"""
import os

from jaxvq.config import load_file


def get_config():
  config = load_file(os.path.join(os.path.dirname(__file__), "vqvae_fashion_mnist.py"))
  config.model.quantizer.rotation_trick = True
  return config
