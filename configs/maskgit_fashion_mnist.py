"""MaskGIT prior (Chang et al. 2022) over the codes of the Fashion-MNIST VQ-VAE (`make demo`'s
run), class-conditional with label dropout 0.1 for classifier-free guidance.

  python train.py --config=configs/maskgit_fashion_mnist.py \\
      --workdir=workdirs/maskgit_fashion_mnist --config.dataset=codes:workdirs/vqvae_fashion_mnist

A bidirectional transformer of 4 blocks of width 128 over the 7x7 grid, sized for a few CPU
cores; samples in 8 parallel decoding steps (`jaxvq sample --steps=...` for others), with a
choice temperature of 9 instead of the paper's 4.5 (on these 7x7 grids the measured better
one: docs/priors.md). It has no bits per code (docs/models.md): it reports the masked codes'
cross-entropy.
"""
from jaxvq.config import get_config as base_config


def get_config():
  config = base_config("maskgit")
  config.dataset = "codes:workdirs/vqvae_fashion_mnist"
  m = config.model
  m.dim = 128
  m.depth = 4
  m.heads = 4
  m.class_conditional = True
  m.label_dropout = 0.1
  m.decoding_steps = 8
  m.choice_temperature = 9.0
  config.batch_size = 64
  config.learning_rate = 1e-3
  config.learning_rate_schedule = "cosine"
  config.num_train_steps = 3000
  config.eval_every_steps = 1000
  config.checkpoint_every_steps = 1000
  return config
