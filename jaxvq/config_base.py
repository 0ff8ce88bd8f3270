"""Defaults shared by every experiment; each file in configs/ starts from these."""
import ml_collections


def get_base_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.dataset = "fashion_mnist"
  config.data_dir = ""            # TFDS data_dir; "" uses $TFDS_DATA_DIR or ~/tensorflow_datasets
  config.image_size = 0           # 0 keeps the dataset's own size
  config.batch_size = 128         # global batch, split over all devices
  config.eval_batch_size = 500
  config.num_train_steps = 5000
  config.learning_rate = 3e-4
  config.seed = 0
  config.log_every_steps = 100
  config.eval_every_steps = 1000
  config.checkpoint_every_steps = 1000
  config.keep_checkpoints = 2
  config.num_eval_examples = 0    # 0: the whole test split
  config.num_image_grid = 64      # images in each PNG grid
  config.num_devices = 0          # 0: all devices

  config.model = ml_collections.ConfigDict()
  config.model.name = "vqvae"
  config.model.architecture = "conv"   # or "mlp" (AE and VAE)
  config.model.hidden = 128
  config.model.residual_hidden = 32
  config.model.num_residual_blocks = 2
  config.model.mlp_hidden = (512, 256)
  # AE / VAE
  config.model.latent_dim = 16          # channels of the latent grid (conv) or its size (mlp)
  config.model.likelihood = "gaussian"  # VAE: "bernoulli" (binarized data) or "gaussian"
  config.model.importance_samples = 0   # VAE: k for the final test NLL estimate (0: skip)
  # VQ-VAE
  config.model.num_codes = 512          # K
  config.model.embedding_dim = 64       # D
  config.model.commitment_cost = 0.25   # beta
  config.model.codebook_cost = 1.0      # alpha
  config.model.normalize_reconstruction = True  # divide the MSE by the data variance
  return config
