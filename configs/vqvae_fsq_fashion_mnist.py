"""The demo VQ-VAE's network (configs/vqvae_fashion_mnist.py) with finite scalar quantization
(Mentzer et al. 2023): levels 8,8,8, K = 512 implicit codes, as the demo's 512.

  python train.py --config=configs/vqvae_fsq_fashion_mnist.py --workdir=workdirs/vqvae_fsq
  ... --config=configs/vqvae_fsq_fashion_mnist.py:8,5,5,5   other levels (K = 1000)
"""
import os

from jaxvq.config import get_config as base_config
from jaxvq.config import load_file


def get_config(levels: str = "8,8,8"):
  config = load_file(os.path.join(os.path.dirname(__file__), "vqvae_fashion_mnist.py"))
  config.model.quantizer = base_config("vqvae", quantizer="fsq").model.quantizer
  config.model.quantizer.levels = tuple(int(level) for level in levels.split(","))
  return config
