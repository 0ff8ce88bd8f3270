"""VAE on Fashion-MNIST with the VQ-VAE demo's network and a discretized Gaussian likelihood.

  python train.py --config=configs/vae_fashion_mnist.py --workdir=workdirs/vae_fashion_mnist

The continuous half of the VQ-VAE paper's Table 1 comparison (docs/likelihood.md):
the conv encoder and decoder of configs/vqvae_fashion_mnist.py (hidden 64,
residual 32, a 7x7 latent grid of 32 channels), a diagonal Gaussian posterior
over that grid, and p(x|z) a Gaussian discretized to the 256 pixel levels, so
that -ELBO and the importance-weighted estimate are in bits per dimension of
the 8-bit images. The same batch, learning rate and steps as the VQ-VAE of
configs/vqvae_likelihood_fashion_mnist.py. The final evaluation estimates the
test NLL with k=100 importance samples on the first 2,000 test images (a
decoder pass per sample and image: k=1000 on all 10,000 is 10M passes, hours
on a CPU); `jaxvq bits --num_examples=2000` bounds the VQ-VAE's on the same.
"""
import os

from jaxvq.config import get_config as base_config
from jaxvq.config import load_file

# What the VAE takes from the VQ-VAE it is compared with: the network and the training budget.
SHARED_TRAINING_KEYS = ("batch_size", "learning_rate", "num_train_steps", "eval_every_steps",
                        "checkpoint_every_steps", "log_every_steps")


def get_config():
  vqvae = load_file(os.path.join(os.path.dirname(__file__), "vqvae_likelihood_fashion_mnist.py"))
  config = base_config("vae")
  config.dataset = vqvae.dataset
  for key in SHARED_TRAINING_KEYS:
    config[key] = vqvae[key]
  config.model.architecture = "conv"
  config.model.hidden = vqvae.model.hidden
  config.model.residual_hidden = vqvae.model.residual_hidden
  config.model.latent_dim = vqvae.model.embedding_dim
  config.model.likelihood = "gaussian"
  config.model.importance_samples = 100
  config.model.importance_examples = 2000
  return config
