"""VQ-VAE on CIFAR-10: the paper's / DeepMind Sonnet notebook's recipe.

  python train.py --config=configs/vqvae_cifar10.py --workdir=workdirs/vqvae_cifar10

128 hidden, 32 residual hidden, 2 residual blocks, D=64, K=512, beta=0.25,
Adam 3e-4, batch 32, the MSE divided by the data variance, and the notebook's
EMA codebook (decay 0.99). The notebook reports normalized MSE 0.056 and
perplexity 326 after 10k steps (not measured here: CIFAR-10 comes from TFDS,
prepared once on a machine with the internet).
"""
from jaxvq.config import get_config as base_config


def get_config():
  config = base_config("vqvae")
  config.dataset = "cifar10"
  config.model.hidden = 128
  config.model.residual_hidden = 32
  config.model.num_residual_blocks = 2
  config.model.embedding_dim = 64
  q = config.model.quantizer
  q.num_codes = 512
  q.commitment_cost = 0.25
  q.codebook_update = "ema"
  q.ema_decay = 0.99
  config.batch_size = 32
  config.learning_rate = 3e-4
  config.num_train_steps = 10000
  config.eval_every_steps = 2500
  config.checkpoint_every_steps = 2500
  return config
