"""The models of images, each registered by the name that `config.model.name` gives it
(jaxvq/registry.py; the priors over code grids are in jaxvq/priors/).

  autoencoder.py  encoder -> z -> decoder, mean squared error
  vae.py          Gaussian posterior, N(0, I) prior, -ELBO; importance-weighted test NLL
  vqvae.py        encoder, quantizer (quantizers/: vq, fsq, lfq, residual_vq), decoder: the
                  tokenizer whose codes the priors model
  classifier.py   a small CNN classifier, cross-entropy: the feature network of `jaxvq quality`
  base.py         ModelOutput, the interface the training loop calls, and CodeUsage
"""
from __future__ import annotations

from jaxvq.models.autoencoder import Autoencoder
from jaxvq.models.base import CodeUsage, Model, ModelOutput
from jaxvq.models.classifier import Classifier
from jaxvq.models.vae import VAE
from jaxvq.models.vqvae import VQVAE

__all__ = ["Autoencoder", "VAE", "VQVAE", "Classifier", "Model", "ModelOutput", "CodeUsage"]
