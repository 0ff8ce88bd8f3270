"""Generation quality, measured: FID, precision and recall, class accuracy, PSNR and SSIM.

  features.py   the feature extractor interface; the feature network's config, training
                (the classifier model, by the training loop) and loading
  metrics.py    the metrics' math, as plain functions of features and images
  sources.py    the sets of images measured: samples, reconstructions, dataset splits
  measure.py    one set against the real test split; the table

  extractor = load_feature_extractor("workdirs/features_fashion_mnist")
  rows = measure_sources(["prior:workdirs/prior"], extractor, num=10000)
  rows = measure_sources(["reconstructions:workdirs/vqvae"], None, num=1000)   # PSNR, SSIM only
"""
from __future__ import annotations

from jaxvq import figures, registry
from jaxvq.errors import ConfigError
from jaxvq.priors.base import Prior
from jaxvq.quality.features import (ClassifierExtractor, FeatureExtractor, FunctionExtractor,
                                    features_config, load_feature_extractor, read_description,
                                    train_feature_network)
from jaxvq.quality.measure import Reference, format_table, measure, real_reference
from jaxvq.quality.metrics import fid, frechet_distance, precision_recall, psnr, ssim
from jaxvq.quality.sources import ImageSet, check_without_features, load_images
from jaxvq.train.workdir import load_config


def measure_sources(sources: list, extractor: FeatureExtractor | None, num: int = 10000, *,
                    dataset: str | None = None, temperature: float = 1.0, seed: int = 0,
                    sample_options: dict | None = None, picture: str = "",
                    picture_columns: int = 12) -> list:
  """One row of metrics per source string (jaxvq.quality.sources), each against the first
  `num` test images of `dataset` (default: the one a jaxvq feature network was trained on);
  a prior's samples are drawn at `temperature` with its `sample_options`
  (jaxvq.sampling.SAMPLE_OPTIONS). With `picture` (a .png path), the first
  `picture_columns` images of each source are drawn there, one row each, below the
  originals where a source holds reconstructions: the sources side by side.

  With no extractor (no feature network, e.g. for an unlabelled image folder), only
  reconstructions:DIR sources, each measured by PSNR and SSIM against its run's own first
  `num` test images; any other source is refused in one line before anything is loaded.

  Returns:
    A list of dicts, one per source: source, num_images, fid, precision, recall, and where
    they apply class_accuracy, psnr and ssim (`jaxvq.quality.measure`); with no extractor,
    source, num_images, psnr and ssim.
  """
  if picture and not picture.endswith(".png"):
    raise ConfigError(f"--picture={picture}: give a .png path")
  reference = None
  if extractor is None:
    for source in sources:
      check_without_features(source)
  else:
    if dataset is None:
      dataset = getattr(extractor, "dataset", None)
    if dataset is None:
      raise ValueError("give the dataset whose test split is the reference")
    reference = real_reference(extractor, dataset, num)
  rows, shown = [], []
  for source in sources:
    images = load_images(source, num, temperature=temperature, seed=seed,
                         sample_options=sample_options)
    rows.append(measure(images, extractor, reference))
    shown.append(images)
  if picture:
    figures.save_png(picture, figures.side_by_side(
        [s.images for s in shown], next((s.references for s in shown if s.is_reconstruction),
                                        None), picture_columns), picture_columns)
  return rows


SOURCE_OF_MODEL = {"vae": "vae", "autoencoder": "ae", "vqvae": "reconstructions"}


def source_of_run(workdir: str) -> str:
  """The images a trained run is measured by: a prior's samples, a VAE's or AE's samples, a
  VQ-VAE's reconstructions."""
  name = load_config(workdir).model.name
  if issubclass(registry.model_class(name), Prior):
    return f"prior:{workdir}"
  if name not in SOURCE_OF_MODEL:
    raise ValueError(f"{workdir} holds a {name} run, whose images jaxvq does not measure")
  return f"{SOURCE_OF_MODEL[name]}:{workdir}"


def measure_run(workdir: str, features_workdir: str, num: int = 10000, seed: int = 0) -> dict:
  """The metrics of a trained run's images (`source_of_run`); numbers only."""
  source = source_of_run(workdir)
  (row,) = measure_sources([source], load_feature_extractor(features_workdir), num, seed=seed)
  return {k: v for k, v in row.items() if k != "source"}


def final_evaluations(config) -> dict:
  """What `train_and_evaluate(config, workdir, final_evaluations=...)` measures after the last
  step for `config`: with config.quality_features, a `fid` row of the run's images against
  the test split (`measure_run`); else nothing."""
  if not config.quality_features:
    return {}
  return {"fid": lambda workdir: measure_run(workdir, config.quality_features,
                                             config.final_fid_images)}
