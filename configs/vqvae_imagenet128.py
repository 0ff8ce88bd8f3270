"""VQ-VAE on ImageNet at 128x128: the paper's setting (van den Oord et al. 2017, section 4.1).

  python train.py --config=configs/vqvae_imagenet128.py --workdir=workdirs/vqvae_imagenet128

128x128x3 images to a 32x32 grid of K=512 codes (f = 4): two stride-2 4x4
convolutions, two 3x3 residual blocks, 256 hidden units, beta = 0.25, Adam at
2e-4, batch 128, 250k steps, the EMA codebook. ImageNet comes from TFDS
(`imagenet2012`, prepared once from the manually downloaded archives, in the
ArrayRecord format: docs/data.md); `--config.dataset=folder:PATH` trains on
your own images instead. Not measured where jaxvq is developed (no ImageNet
there): tests run it on mocked TFDS data and on a folder of real photos.
"""
from jaxvq.config import get_config as base_config


def get_config():
  config = base_config("vqvae")
  config.dataset = "imagenet2012"
  config.image_size = 128
  m = config.model
  m.hidden = 256
  m.residual_hidden = 256
  m.num_residual_blocks = 2
  m.embedding_dim = 64
  q = m.quantizer
  q.num_codes = 512
  q.commitment_cost = 0.25
  q.codebook_update = "ema"
  q.ema_decay = 0.99
  q.kmeans_init_batches = 10
  q.restart_every_steps = 1000
  config.batch_size = 128
  config.eval_batch_size = 256
  config.num_eval_examples = 10000
  config.learning_rate = 2e-4
  config.num_train_steps = 250000
  config.log_every_steps = 500
  config.eval_every_steps = 10000
  config.checkpoint_every_steps = 5000
  return config
