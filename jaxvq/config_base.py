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
  config.learning_rate_schedule = "constant"  # or "cosine": decays to 0 over num_train_steps
  config.seed = 0
  config.log_every_steps = 100
  config.eval_every_steps = 1000
  config.checkpoint_every_steps = 1000
  config.keep_checkpoints = 2
  config.num_eval_examples = 0    # 0: the whole test split
  config.num_image_grid = 64      # images in each PNG grid
  config.num_devices = 0          # 0: all devices
  config.overwrite = False        # True: a workdir holding a run of another config is cleared
  config.dtype = "float32"        # or "bfloat16": the nets' activations and convolutions (the
                                  # parameters, optimizer state and latent math stay float32)

  config.model = ml_collections.ConfigDict()
  config.model.name = "vqvae"
  config.model.architecture = "conv"   # or "conv_vector" / "mlp" (AE and VAE): a latent vector
  config.model.hidden = 128
  config.model.residual_hidden = 32
  config.model.num_residual_blocks = 2
  config.model.mlp_hidden = (512, 256)
  # AE / VAE
  config.model.latent_dim = 16          # channels of the latent grid (conv) or the vector's size
  config.model.likelihood = "gaussian"  # VAE: "bernoulli" (binarized data) or "gaussian"
  config.model.importance_samples = 0   # VAE: k for the final test NLL estimate (0: skip)
  config.model.importance_examples = 0  # VAE: on the first this many test images (0: all)
  # VQ-VAE
  config.model.num_codes = 512          # K
  config.model.embedding_dim = 64       # D
  config.model.commitment_cost = 0.25   # beta
  config.model.codebook_cost = 1.0      # alpha
  config.model.normalize_reconstruction = True  # divide the MSE by the data variance
  # VQ-VAE codebook health (jaxvq/codebook.py)
  config.model.codebook_update = "gradient"  # or "ema"
  config.model.ema_decay = 0.99              # gamma
  config.model.ema_epsilon = 1e-5            # Laplace smoothing of the cluster sizes
  config.model.kmeans_init_batches = 0       # k-means init from this many first batches (0: off)
  config.model.kmeans_iterations = 10        # Lloyd iterations after k-means++ seeding
  config.model.restart_every_steps = 0       # look for dead codes this often (0: never)
  config.model.dead_code_threshold = 1.0     # dead: EMA of assignments per step below this
  config.model.usage_decay = 0.99            # decay of that usage EMA
  config.model.cosine_codebook = False       # l2-normalised codes and inputs
  config.model.codebook_dim = 0              # lookup dimension d < D (0: d = D)
  # PixelCNN prior (configs/pixelcnn_*.py); K, the classes and the image size come from the codes
  config.model.channels = 64
  config.model.num_layers = 8
  config.model.kernel_size = 3
  config.model.head_channels = 256
  config.model.class_conditional = False
  config.model.num_classes = 0
  config.model.image_dims = 0
  config.vqvae_workdir = ""              # the prior's VQ-VAE run
  return config
