"""Autoregressive transformer prior over the 32x32 code grids of the ImageNet VQ-VAE
(configs/vqvae_imagenet128.py), conditioned on the 1,000 classes, GPT-style as
taming-transformers' class-conditional ImageNet prior and LlamaGen's.

  python -m jaxvq encode --workdir=workdirs/vqvae_imagenet128
  python train.py --config=configs/transformer_imagenet128.py \\
      --workdir=workdirs/transformer_imagenet128

A 1,024-code sequence; 16 blocks of width 768 with 12 heads (about GPT-2 small's 110M
parameters, below LlamaGen-B's 111M at 12 blocks). The class becomes "no class" in 10% of the
training grids (LlamaGen's rate), for classifier-free guidance when sampling
(`jaxvq sample --guidance=S --top_k=...`). Sampling runs 1,024 steps of one position each,
from a key/value cache. Not measured where jaxvq is developed (no ImageNet there).
"""
from jaxvq.config import get_config as base_config


def get_config():
  config = base_config("transformer")
  config.dataset = "codes:workdirs/vqvae_imagenet128"
  m = config.model
  m.dim = 768
  m.depth = 16
  m.heads = 12
  m.class_conditional = True
  m.label_dropout = 0.1
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
