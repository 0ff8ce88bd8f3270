"""jaxvq: learn latent representations of images and generate new ones, in JAX and Flax NNX.

  import jaxvq
  config = jaxvq.get_config("vqvae")             # or jaxvq.config.load_file("configs/NAME.py")
  metrics = jaxvq.train_and_evaluate(config, "workdirs/vqvae")
  run = jaxvq.load_run("workdirs/vqvae")
  codes = run.model.encode_to_indices(images)    # [B, H, W, C] in [0, 1] -> [B, h, w] int32
  jaxvq.encode_codes("workdirs/vqvae")            # every split's codes, for a prior
  prior = jaxvq.get_config("pixelcnn"); prior.dataset = "codes:workdirs/vqvae"
  jaxvq.train_and_evaluate(prior, "workdirs/prior")
  pictures, codes, _ = jaxvq.sample_images("workdirs/prior", num_samples=16)
  jaxvq.measure_sources(["prior:workdirs/prior"], jaxvq.load_feature_extractor(FEATURES_DIR))

The pieces: jaxvq.ops (the math as pure functions), jaxvq.nets (encoders and
decoders), jaxvq.models, jaxvq.data, jaxvq.train, jaxvq.quality (FID and the other
measures of generated images), jaxvq.runtime (meshes, processes, XLA options),
jaxvq.commands (the command line).
"""
from jaxvq.config import get_config
from jaxvq.data import load_dataset
from jaxvq.errors import ConfigError, DatasetError, RunError, TrainingDiverged, UserError
from jaxvq.models import VAE, VQVAE, Autoencoder, ModelOutput, PixelCNNPrior, build_model
from jaxvq.ops.entropy import entropy_loss
from jaxvq.ops.fsq import quantize as fsq_quantize
from jaxvq.ops.lfq import quantize as lfq_quantize
from jaxvq.ops.residual_vq import residual_quantize
from jaxvq.ops.vq import (Quantized, code_counts, lookup, nearest_code, perplexity_from_counts,
                          quantize, rotate_to)
from jaxvq.quality import (FeatureExtractor, FunctionExtractor, fid, load_feature_extractor,
                           measure_sources, train_feature_network)
from jaxvq.sampling import sample_codes, sample_images
from jaxvq.train import Run, encode_codes, load_run, train_and_evaluate

__version__ = "0.2.0"

__all__ = [
    # configs and data
    "get_config", "load_dataset",
    # the quantizers, as pure functions (jaxvq.ops.fsq, .lfq, .residual_vq: their index maps)
    "quantize", "Quantized", "nearest_code", "lookup", "code_counts", "perplexity_from_counts",
    "rotate_to", "entropy_loss", "fsq_quantize", "lfq_quantize", "residual_quantize",
    # models
    "build_model", "Autoencoder", "VAE", "VQVAE", "PixelCNNPrior", "ModelOutput",
    # training and trained runs
    "train_and_evaluate", "load_run", "Run", "encode_codes",
    # generation, and its quality (jaxvq.quality: the metrics, the image sources)
    "sample_images", "sample_codes", "fid", "FeatureExtractor", "FunctionExtractor",
    "load_feature_extractor", "train_feature_network", "measure_sources",
    # the errors a user can fix
    "UserError", "ConfigError", "DatasetError", "RunError", "TrainingDiverged",
]
