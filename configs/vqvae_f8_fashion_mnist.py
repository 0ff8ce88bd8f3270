"""VQ-VAE at f = 8 on Fashion-MNIST: the images resized to 32x32, a 4x4 grid of K = 512 codes
(16 codes an image), the baseline of configs/vqgan_f8_fashion_mnist.py (the same codes and
steps, with perceptual and adversarial losses).

  python train.py --config=configs/vqvae_f8_fashion_mnist.py \\
      --workdir=workdirs/vqvae_f8_fashion_mnist

Three stride-2 stages of 32, 64 and 128 channels (hidden 64, channel multipliers 1, 1, 2),
two residual blocks of 32, D = 32, the demo's EMA codebook with k-means initialisation and
dead-code restarts; batch 64, Adam at 1e-3, 3,000 steps. Its FID wants a feature network of
32x32 images (`jaxvq features --dataset=fashion_mnist --image_size=32 ...`).
"""
from jaxvq.config import get_config as base_config


def get_config():
  config = base_config("vqvae")
  config.dataset = "fashion_mnist"
  config.image_size = 32
  m = config.model
  m.update(hidden=64, residual_hidden=32, num_residual_blocks=2, downsample=8,
           channel_multipliers=(1, 1, 2), embedding_dim=32)
  m.quantizer.update(num_codes=512, codebook_update="ema", kmeans_init_batches=10,
                     restart_every_steps=100, dead_code_threshold=1.0)
  config.update(batch_size=64, learning_rate=1e-3, num_train_steps=3000, eval_every_steps=1000,
                checkpoint_every_steps=1000, log_every_steps=100)
  return config
