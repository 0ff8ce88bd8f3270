"""VQ-VAE at f = 8 on 256x256 images: a 32x32 grid, as VQGAN-style tokenizers use.

  python train.py --config=configs/vqvae_f8_256.py --workdir=workdirs/vqvae_f8_256 \\
      --config.dataset=folder:/path/to/your/photos

Three stride-2 stages with channel multipliers (1, 2, 2) of 128 (taming's ch_mult),
two residual blocks, K = 1,024 codes of D = 64 with the EMA codebook, k-means
initialisation and dead-code restarts, batch 32. The default dataset is
ImageNet from TFDS (`imagenet2012`, center-cropped and resized to 256);
a folder of images (center-cropped and resized) works the same way. A 32x32
grid of K = 1,024 at batch 32 is 32,768 x 1,024 distances: the nearest-code
search stays whole (`search_chunk_size` 0 chunks it above 2^24). Not
measured where jaxvq is developed: tests run it on mocked TFDS data and on a
folder of real photos.
"""
from jaxvq.config import get_config as base_config


def get_config():
  config = base_config("vqvae")
  config.dataset = "imagenet2012"
  config.image_size = 256
  m = config.model
  m.hidden = 128
  m.residual_hidden = 128
  m.num_residual_blocks = 2
  m.downsample = 8
  m.channel_multipliers = (1, 2, 2)
  m.embedding_dim = 64
  q = m.quantizer
  q.num_codes = 1024
  q.commitment_cost = 0.25
  q.codebook_update = "ema"
  q.ema_decay = 0.99
  q.kmeans_init_batches = 10
  q.restart_every_steps = 1000
  config.batch_size = 32
  config.eval_batch_size = 64
  config.num_eval_examples = 10000
  config.learning_rate = 2e-4
  config.num_train_steps = 250000
  config.log_every_steps = 500
  config.eval_every_steps = 10000
  config.checkpoint_every_steps = 5000
  return config
