"""VQ-VAE on CIFAR-10: the paper's / DeepMind Sonnet notebook's recipe.

128 hidden, 32 residual hidden, 2 residual blocks, D=64, K=512, beta=0.25,
Adam 3e-4, batch 32, the MSE divided by the data variance, and the notebook's
EMA codebook (decay 0.99). The notebook reports normalized MSE 0.056 and
perplexity 326 after 10k steps.
CIFAR-10 comes from TFDS: prepare it once on a machine with the internet.
"""
from jaxvq.config_base import get_base_config


def get_config():
  config = get_base_config()
  config.dataset = "cifar10"
  config.model.name = "vqvae"
  config.model.hidden = 128
  config.model.residual_hidden = 32
  config.model.num_residual_blocks = 2
  config.model.embedding_dim = 64
  config.model.num_codes = 512
  config.model.commitment_cost = 0.25
  config.model.codebook_update = "ema"
  config.model.ema_decay = 0.99
  config.batch_size = 32
  config.learning_rate = 3e-4
  config.num_train_steps = 10000
  config.eval_every_steps = 2500
  config.checkpoint_every_steps = 2500
  return config
