"""configs/vqvae_f8_fashion_mnist.py (32x32 Fashion-MNIST, a 4x4 grid of K = 512 codes,
3,000 steps) with the VQGAN losses of configs/vqgan_fashion_mnist.py (docs/models.md): a
perceptual loss in a seeded random-weight CNN's features and a PatchGAN discriminator, here
from step 1,000, with the adaptive weight; the same codes, steps and reconstruction term (the
normalized MSE) as the baseline.

  python train.py --config=configs/vqgan_f8_fashion_mnist.py \\
      --workdir=workdirs/vqgan_f8_fashion_mnist

Two stride-2 discriminator layers, 32 channels wide (a 6x6 grid of patch logits), the hinge
loss.
"""
import os

from jaxvq.config import load_file
from jaxvq.models.adversarial import ADVERSARIAL_FIELDS, PERCEPTUAL_FIELDS


def get_config():
  here = os.path.dirname(__file__)
  config = load_file(os.path.join(here, "vqvae_f8_fashion_mnist.py"))
  losses = load_file(os.path.join(here, "vqgan_fashion_mnist.py")).model
  config.model.update({k: losses[k] for k in {**PERCEPTUAL_FIELDS, **ADVERSARIAL_FIELDS}})
  config.model.disc_start_step = 1000
  return config
