"""VQ-VAE on Fashion-MNIST whose decoder is a likelihood of the 8-bit pixels (docs/likelihood.md).

  python train.py --config=configs/vqvae_likelihood_fashion_mnist.py \\
      --workdir=workdirs/vqvae_likelihood_fashion_mnist

The demo's network and codebook (configs/vqvae_fashion_mnist.py) with the
reconstruction term -log p(x | z_q), a Gaussian discretized to the 256 levels
with a learned log-scale; the demo's batch, learning rate and 2,000 steps, as
configs/vae_fashion_mnist.py. With an unconditional PixelCNN prior over
its codes, `jaxvq bits` bounds the test NLL in bits per dimension (the VQ-VAE
paper's Table 1 comparison with the VAE).
"""
import os

from jaxvq.config import load_file


def get_config():
  config = load_file(os.path.join(os.path.dirname(__file__), "vqvae_fashion_mnist.py"))
  config.model.likelihood = "discretized_gaussian"
  return config
