"""Generation quality, measured: FID, precision and recall, class accuracy, PSNR and SSIM.

  features.py   the feature extractor interface; the feature network's config, training
                (the classifier model, by the training loop) and loading
  metrics.py    the metrics' math, as plain functions of features and images
  sources.py    the sets of images measured: samples, reconstructions, dataset splits
  measure.py    one set against the real test split; the table

  extractor = load_feature_extractor("workdirs/features_fashion_mnist")
  rows = measure_sources(["prior:workdirs/prior"], extractor, num=10000)
"""
from __future__ import annotations

from jaxvq.quality.features import (ClassifierExtractor, FeatureExtractor, FunctionExtractor,
                                    features_config, load_feature_extractor, read_description,
                                    train_feature_network)
from jaxvq.quality.measure import Reference, format_table, measure, real_reference
from jaxvq.quality.metrics import fid, frechet_distance, precision_recall, psnr, ssim
from jaxvq.quality.sources import ImageSet, load_images


def measure_sources(sources: list, extractor: FeatureExtractor, num: int = 10000, *,
                    dataset: str | None = None, temperature: float = 1.0, seed: int = 0) -> list:
  """One row of metrics per source string (jaxvq.quality.sources), each against the first
  `num` test images of `dataset` (default: the one a jaxvq feature network was trained on).

  Returns:
    A list of dicts, one per source: source, num_images, fid, precision, recall, and where
    they apply class_accuracy, psnr and ssim (`jaxvq.quality.measure`).
  """
  if dataset is None:
    dataset = getattr(extractor, "dataset", None)
  if dataset is None:
    raise ValueError("give the dataset whose test split is the reference")
  reference = real_reference(extractor, dataset, num)
  return [measure(load_images(source, num, temperature=temperature, seed=seed), extractor,
                  reference) for source in sources]


SOURCE_OF_MODEL = {"pixelcnn": "prior", "vae": "vae", "autoencoder": "ae",
                   "vqvae": "reconstructions"}


def measure_run(workdir: str, features_workdir: str, num: int = 10000, seed: int = 0) -> dict:
  """The metrics of a trained run's images: a prior's, VAE's or AE's samples, a VQ-VAE's
  reconstructions (the `fid` row of a training's final evaluation when config.quality_features
  is set); numbers only."""
  from jaxvq.train.workdir import load_config  # pylint: disable=g-import-not-at-top
  source = f"{SOURCE_OF_MODEL[load_config(workdir).model.name]}:{workdir}"
  (row,) = measure_sources([source], load_feature_extractor(features_workdir), num, seed=seed)
  return {k: v for k, v in row.items() if k != "source"}
