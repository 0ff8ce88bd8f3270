"""The demo VQ-VAE's network (configs/vqvae_fashion_mnist.py) with lookup-free quantization
(MAGVIT-v2, Yu et al. 2023): d = 9 sign channels, K = 512 implicit codes, as the demo's 512.

  python train.py --config=configs/vqvae_lfq_fashion_mnist.py --workdir=workdirs/vqvae_lfq
"""
import os

from jaxvq.config import get_config as base_config
from jaxvq.config import load_file


def get_config(dim: str = "9"):
  config = load_file(os.path.join(os.path.dirname(__file__), "vqvae_fashion_mnist.py"))
  config.model.quantizer = base_config("vqvae", quantizer="lfq").model.quantizer
  config.model.quantizer.dim = int(dim)
  return config
