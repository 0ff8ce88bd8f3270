"""jaxvq: learn latent representations of images and generate new ones, in JAX and Flax NNX.

  import jaxvq
  config = jaxvq.get_config("vqvae")             # or jaxvq.config.load_file("configs/NAME.py")
  metrics = jaxvq.train_and_evaluate(config, "workdirs/vqvae")
  run = jaxvq.load_run("workdirs/vqvae")
  codes = run.model.encode_to_indices(images)    # [B, H, W, C] in [0, 1] -> [B, h, w] int32
  jaxvq.encode_codes("workdirs/vqvae")            # every split's codes, for a prior (jaxvq.tokens)
  prior = jaxvq.get_config("pixelcnn"); prior.dataset = "codes:workdirs/vqvae"
  jaxvq.train_and_evaluate(prior, "workdirs/prior")
  pictures, codes, _ = jaxvq.sample_images("workdirs/prior", num_samples=16)
  jaxvq.measure_sources(["prior:workdirs/prior"], jaxvq.load_feature_extractor(FEATURES_DIR))

The pieces: jaxvq.ops (the math as pure functions), jaxvq.nets (encoders and
decoders), jaxvq.models (autoencoder, VAE, the VQ-VAE tokenizer), jaxvq.priors (priors
over code grids), jaxvq.tokens (the link: codes on disk, their provenance, the
Tokenizer interface), jaxvq.registry, jaxvq.data, jaxvq.train, jaxvq.quality (FID
and the other measures of generated images), jaxvq.runtime (meshes, processes, XLA
options), jaxvq.commands (the command line). The names below are imported when
first used.
"""
import importlib

from jaxvq.version import __version__

# Each public name and the module that defines it, imported when first used: `import
# jaxvq.ops.vq` loads the quantizer's math alone, without the training stack (Orbax, Grain).
_PUBLIC = {
    # configs and data
    "get_config": "jaxvq.config", "load_dataset": "jaxvq.data",
    # the quantizers, as pure functions (jaxvq.ops.fsq, .lfq, .residual_vq: their index maps)
    "quantize": "jaxvq.ops.vq", "Quantized": "jaxvq.ops.vq", "nearest_code": "jaxvq.ops.vq",
    "lookup": "jaxvq.ops.vq", "code_counts": "jaxvq.ops.vq",
    "perplexity_from_counts": "jaxvq.ops.vq", "rotate_to": "jaxvq.ops.vq",
    "entropy_loss": "jaxvq.ops.entropy", "fsq_quantize": ("jaxvq.ops.fsq", "quantize"),
    "lfq_quantize": ("jaxvq.ops.lfq", "quantize"), "residual_quantize": "jaxvq.ops.residual_vq",
    # models, priors, tokenizers
    "build_model": "jaxvq.registry", "Autoencoder": "jaxvq.models", "VAE": "jaxvq.models",
    "VQVAE": "jaxvq.models", "ModelOutput": "jaxvq.models", "Model": "jaxvq.models",
    "Prior": "jaxvq.priors",
    "Tokenizer": "jaxvq.tokens",
    # training and trained runs
    "train_and_evaluate": "jaxvq.train", "load_run": "jaxvq.train", "Run": "jaxvq.train",
    "encode_codes": "jaxvq.tokens.runs", "load_prior": "jaxvq.tokens.runs",
    "load_tokenizer_of": "jaxvq.tokens.runs",
    # generation, and its quality (jaxvq.quality: the metrics, the image sources)
    "sample_images": "jaxvq.sampling", "sample_codes": "jaxvq.sampling",
    "fid": "jaxvq.quality", "FeatureExtractor": "jaxvq.quality",
    "FunctionExtractor": "jaxvq.quality", "load_feature_extractor": "jaxvq.quality",
    "train_feature_network": "jaxvq.quality", "measure_sources": "jaxvq.quality",
    # the errors a user can fix
    "UserError": "jaxvq.errors", "ConfigError": "jaxvq.errors", "DatasetError": "jaxvq.errors",
    "RunError": "jaxvq.errors", "TrainingDiverged": "jaxvq.errors",
    "SampleError": "jaxvq.errors", "BoundError": "jaxvq.errors",
}

__all__ = list(_PUBLIC)


def __getattr__(name: str):
  if name not in _PUBLIC:
    raise AttributeError(f"module 'jaxvq' has no attribute {name!r}")
  module, attr = _PUBLIC[name] if isinstance(_PUBLIC[name], tuple) else (_PUBLIC[name], name)
  value = getattr(importlib.import_module(module), attr)
  globals()[name] = value
  return value


def __dir__():
  return sorted(set(globals()) | set(_PUBLIC))
