"""A set of images measured against the real test split, in the features of one extractor.

  extractor = load_feature_extractor(FEATURES_DIR)
  reference = real_reference(extractor, "fashion_mnist", num=10000)
  row = measure(load_images("prior:workdirs/prior", 10000), extractor, reference)

Every set is compared with the first N images of the test split of the dataset
the feature network was trained on, at the same N: FID is biased upwards at small
N, so only values of the same N compare. Without a feature network, reconstructions
are measured by PSNR and SSIM against their originals alone (`measure(images, None, None)`).
"""
from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np

from jaxvq.data import load_dataset
from jaxvq.errors import DatasetError
from jaxvq.quality import metrics
from jaxvq.quality.features import FeatureExtractor
from jaxvq.quality.sources import ImageSet

NEAREST_NEIGHBOURS = 3   # k of precision and recall, as Kynkäänniemi et al. 2019


@dataclasses.dataclass
class Reference:
  """The real test split's first N images in the extractor's features."""
  dataset: str
  features: np.ndarray          # [N, F]
  labels: np.ndarray            # [N]
  logits: Optional[np.ndarray]  # [N, K]

  @property
  def num(self) -> int:
    return len(self.features)


def check_num_images(num: int, extractor: FeatureExtractor, available: int) -> None:
  """Refuses, in one line, an N too small for the feature covariance or above the test split."""
  if num <= extractor.feature_dim:
    raise DatasetError(f"--num_images={num} is too few: FID needs more images than features "
                       f"({extractor.feature_dim}) for a full-rank covariance, and is biased "
                       f"at small N (10,000 is the usual N)")
  if num > available:
    raise DatasetError(f"--num_images={num} is more than the {available} real test images "
                       f"it is compared with: give --num_images={available} or fewer")


def real_reference(extractor: FeatureExtractor, dataset: str, num: int) -> Reference:
  """The first `num` test images of `dataset`, at the extractor's image size (resized as a run
  with that config.image_size sees them), in the extractor's features."""
  test = load_dataset(dataset, image_size=extractor.image_shape[0]).test
  check_num_images(num, extractor, len(test))
  indices = np.arange(num)
  features, logits = extractor(test.inputs(indices))
  return Reference(dataset, features, test.labels(indices), logits)


def fidelity(images: ImageSet) -> dict:
  """psnr and ssim of reconstructions against their originals (nothing for other sets): what
  needs no feature network."""
  if not images.is_reconstruction:
    return {}
  references = images.references
  if references.dtype == np.uint8:
    references = references.astype(np.float32) / 255.0
  return {"psnr": metrics.psnr(images.images, references),
          "ssim": metrics.ssim(np.asarray(images.images, np.float32), references)}


def measure(images: ImageSet, extractor: Optional[FeatureExtractor],
            reference: Optional[Reference]) -> dict:
  """The metrics of `images` against the reference: num_images, fid, precision, recall;
  class_accuracy when the images carry labels and the extractor classifies; psnr and ssim
  of reconstructions (whose fid is the reconstruction FID). With no extractor (and no
  reference), reconstructions only, and only num_images, psnr and ssim (`fidelity`)."""
  if extractor is None:
    if not images.is_reconstruction:
      raise ValueError(f"{images.source}: only reconstructions are measured without a "
                       f"feature extractor")
    return {"source": images.source, "num_images": len(images.images), **fidelity(images)}
  if len(images.images) != reference.num:
    raise DatasetError(f"{images.source} gave {len(images.images)} images, not the "
                       f"{reference.num} of the reference: FIDs compare only at equal N")
  extractor.check_shape(images.images.shape[1:], f"the images of {images.source}")
  features, logits = extractor(images.images)
  precision, recall = metrics.precision_recall(reference.features, features, NEAREST_NEIGHBOURS)
  row = {"source": images.source, "num_images": reference.num,
         "fid": metrics.fid(features, reference.features),
         "precision": precision, "recall": recall}
  if images.labels is not None and logits is not None:
    row["class_accuracy"] = metrics.accuracy(logits, images.labels)
  return {**row, **fidelity(images)}


COLUMNS = (("fid", "FID", "{:.2f}"), ("precision", "precision", "{:.3f}"),
           ("recall", "recall", "{:.3f}"), ("class_accuracy", "class accuracy", "{:.4f}"),
           ("psnr", "PSNR (dB)", "{:.2f}"), ("ssim", "SSIM", "{:.4f}"))


def format_table(rows: list) -> str:
  """A Markdown table of measured rows, one column per metric any row has."""
  columns = [c for c in COLUMNS if any(c[0] in row for row in rows)]
  lines = ["| images | N | " + " | ".join(title for _, title, _ in columns) + " |",
           "|---|---|" + "---|" * len(columns)]
  for row in rows:
    cells = [fmt.format(row[key]) if key in row else "—" for key, _, fmt in columns]
    lines.append(f"| {row['source']} | {row['num_images']} | " + " | ".join(cells) + " |")
  return "\n".join(lines)
