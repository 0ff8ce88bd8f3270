"""VAE on dynamically binarized MNIST, Bernoulli likelihood.

The classic setting (Burda et al. report 86.76 nats of test NLL for a
one-layer VAE): `--config.model.architecture=mlp` gives the MLP encoder and
decoder; the default is the convolutional network with a 7x7x8 latent grid.
Final evaluation estimates test NLL with k=1000 importance samples on the
first 1,000 test images (k=1000 over all 10,000 is 10M decoder passes, hours
on a CPU; `--config.model.importance_examples=0` does all of them).
"""
from jaxvq.config_base import get_base_config


def get_config():
  config = get_base_config()
  config.dataset = "binarized_mnist"
  config.model.name = "vae"
  config.model.likelihood = "bernoulli"
  config.model.hidden = 64
  config.model.latent_dim = 8
  config.model.mlp_hidden = (512, 256)
  config.model.importance_samples = 1000
  config.model.importance_examples = 1000
  config.batch_size = 64
  config.learning_rate = 1e-3
  config.num_train_steps = 10000
  config.eval_every_steps = 2500
  config.checkpoint_every_steps = 2500
  return config
