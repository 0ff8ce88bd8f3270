"""The demo's VQ-VAE (configs/vqvae_fashion_mnist.py) trained with VQGAN's losses
(Esser et al. 2021; docs/models.md): a perceptual loss in a seeded random-weight CNN's
features (no downloaded weights; two 3x3 convolutions of 16, 32 and 64 channels) and a
PatchGAN discriminator from step 500 with the adaptive weight 0.2.

  python train.py --config=configs/vqgan_fashion_mnist.py --workdir=workdirs/vqgan_fashion_mnist

The same network, codebook, batch, learning rate and 2,000 steps as the demo; the
reconstruction term stays the demo's normalized MSE, the perceptual loss weighs 0.5. Two
stride-2 discriminator layers (28x28 images: a 5x5 grid of patch logits), 32 channels wide,
the hinge loss.
"""
import os

from jaxvq.config import load_file


def get_config():
  config = load_file(os.path.join(os.path.dirname(__file__), "vqvae_fashion_mnist.py"))
  config.model.update(perceptual_weight=0.5, perceptual_network="random",
                      perceptual_widths=(16, 32, 64), adversarial_weight=0.2,
                      disc_start_step=500, disc_loss="hinge", disc_layers=2, disc_hidden=32,
                      adaptive_weight=True)
  return config
