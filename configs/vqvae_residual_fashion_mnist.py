"""The demo VQ-VAE (configs/vqvae_fashion_mnist.py) with residual VQ (SoundStream, Zeghidour
et al. 2021): Q stages of the demo's codebook (K = 512 each; EMA, k-means initialisation and
dead-code restarts per stage).

  python train.py --config=configs/vqvae_residual_fashion_mnist.py --workdir=workdirs/vqvae_rvq4
  ... --config=configs/vqvae_residual_fashion_mnist.py:2   depth 2 (default 4)
"""
import os

from jaxvq.config import get_config as base_config
from jaxvq.config import load_file


def get_config(depth: str = "4"):
  config = load_file(os.path.join(os.path.dirname(__file__), "vqvae_fashion_mnist.py"))
  codebook = config.model.quantizer
  config.model.quantizer = base_config("vqvae", quantizer="residual_vq").model.quantizer
  config.model.quantizer.update({k: v for k, v in codebook.items()
                                 if k in config.model.quantizer and k != "name"})
  config.model.quantizer.depth = int(depth)
  return config
