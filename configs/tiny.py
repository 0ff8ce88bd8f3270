"""A seconds-long run for tests and smoke checks: `--config.model.name` picks the model."""
from jaxvq.config_base import get_base_config


def get_config():
  config = get_base_config()
  config.dataset = "fashion_mnist"
  config.model.name = "vqvae"
  config.model.hidden = 16
  config.model.residual_hidden = 8
  config.model.num_residual_blocks = 1
  config.model.num_codes = 16
  config.model.embedding_dim = 8
  config.model.latent_dim = 4
  config.model.mlp_hidden = (32,)
  config.model.importance_samples = 4
  config.batch_size = 16
  config.eval_batch_size = 200
  config.num_eval_examples = 400
  config.learning_rate = 2e-3
  config.num_train_steps = 20
  config.log_every_steps = 5
  config.eval_every_steps = 10
  config.checkpoint_every_steps = 10
  config.num_image_grid = 16
  return config
