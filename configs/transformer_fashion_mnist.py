"""Autoregressive transformer prior (GPT-style, as taming-transformers' and LlamaGen's) over the
codes of the Fashion-MNIST VQ-VAE (`make demo`'s run).

  python train.py --config=configs/transformer_fashion_mnist.py \\
      --workdir=workdirs/transformer_fashion_mnist \\
      --config.dataset=codes:workdirs/vqvae_fashion_mnist

Class-conditional on the 10 labels, the class replaced by "no class" in 10% of the training
grids, so that `jaxvq sample --guidance=S` can use classifier-free guidance; K and the 7x7
grid come from the codes. 2,400 steps at learning rate 3e-3: no more wall time on a CPU than
configs/pixelcnn_fashion_mnist_large.py's 3,000 steps, and lower test bits per code
(docs/priors.md). Twice the steps (--config.num_train_steps=4800) give the best samples
measured so far (docs/priors.md#the-best-prior-guidance-125-and-twice-the-training).
"""
from jaxvq.config import get_config as base_config


def get_config():
  config = base_config("transformer")
  config.dataset = "codes:workdirs/vqvae_fashion_mnist"
  config.model.dim = 128
  config.model.depth = 6
  config.model.heads = 4
  config.model.class_conditional = True
  config.model.label_dropout = 0.1
  config.batch_size = 64
  config.learning_rate = 3e-3
  config.learning_rate_schedule = "cosine"
  config.num_train_steps = 2400
  config.eval_every_steps = 800
  config.checkpoint_every_steps = 800
  return config
