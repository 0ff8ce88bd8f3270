"""VQGAN-style tokenizer of ImageNet at 128x128, f = 8: a 16x16 grid of K = 1,024 codes,
trained with taming-transformers' losses (Esser et al. 2021; docs/models.md): the L1
reconstruction error, a perceptual loss in a seeded random-weight CNN's features (no
downloaded weights; `perceptual_network="lpips"` takes LPIPS from lpips-nnx instead), a
PatchGAN discriminator (3 layers, 64 channels, hinge loss) from step 30,000 with the adaptive
weight 0.8, and LeCam regularisation.

  python train.py --config=configs/vqgan_imagenet128.py --workdir=workdirs/vqgan_imagenet128

The network of configs/vqvae_f8_256.py (three stride-2 stages with channel multipliers
(1, 2, 2) of 128, two residual blocks, D = 64, the EMA codebook with k-means initialisation
and dead-code restarts), batch 64, Adam at 2e-4, 250k steps. Not measured where jaxvq is
developed: tests run it narrow on mocked TFDS data and on a folder of real photos.
"""
import os

from jaxvq.config import load_file


def get_config():
  config = load_file(os.path.join(os.path.dirname(__file__), "vqvae_f8_256.py"))
  config.image_size = 128
  config.model.update(likelihood="l1", perceptual_weight=1.0, perceptual_network="random",
                      perceptual_widths=(64, 128, 256, 256), adversarial_weight=0.8,
                      disc_start_step=30000, disc_loss="hinge", disc_layers=3, disc_hidden=64,
                      adaptive_weight=True, lecam_weight=0.001)
  config.update(batch_size=64, eval_batch_size=64)
  return config
