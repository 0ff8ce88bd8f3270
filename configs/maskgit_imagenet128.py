"""MaskGIT prior (Chang et al. 2022) over the 32x32 code grids of the ImageNet VQ-VAE
(configs/vqvae_imagenet128.py), conditioned on the 1,000 classes with label dropout 0.1 for
classifier-free guidance.

  python -m jaxvq encode --workdir=workdirs/vqvae_imagenet128
  python train.py --config=configs/maskgit_imagenet128.py --workdir=workdirs/maskgit_imagenet128

MaskGIT's released ImageNet transformer has 24 blocks of width 768 with 16 heads; the
paper decodes 16x16 grids (256x256 images) in 8 steps and 32x32 grids (512x512) in 12.
This one has 16 blocks of width 512 with 8 heads over the 1,024 codes of a 32x32 grid, and
decodes in 12 steps (`jaxvq sample --steps` for others). Not measured where jaxvq is
developed (no ImageNet there).
"""
from jaxvq.config import get_config as base_config


def get_config():
  config = base_config("maskgit")
  config.dataset = "codes:workdirs/vqvae_imagenet128"
  m = config.model
  m.dim = 512
  m.depth = 16
  m.heads = 8
  m.class_conditional = True
  m.label_dropout = 0.1
  m.decoding_steps = 12
  config.batch_size = 128
  config.eval_batch_size = 256
  config.num_eval_examples = 10000
  config.learning_rate = 3e-4
  config.learning_rate_schedule = "cosine"
  config.num_train_steps = 200000
  config.log_every_steps = 500
  config.eval_every_steps = 10000
  config.checkpoint_every_steps = 5000
  return config
