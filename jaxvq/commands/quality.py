"""Measures images against the real test split:

  jaxvq quality --features=workdirs/features_fashion_mnist --images=prior:PRIOR_DIR \\
      [--images=dataset:fashion_mnist:train ...] [--num_images=10000] [--temperature=1.0]
  jaxvq quality --images=reconstructions:VQVAE_DIR [--num_images=1000]   (no feature network)

For each --images source (prior:, marginal:, vae:, ae:, reconstructions:, dataset:;
jaxvq/quality/sources.py) it computes, against the first N test images of the
dataset the feature network (`jaxvq features`) was trained on: FID (Heusel et al.
2017), precision and recall of the feature manifolds (Kynkäänniemi et al. 2019,
k = 3), the classifier's accuracy on the classes class-conditional samples were
drawn for, and for reconstructions PSNR and SSIM (their FID is the
reconstruction FID). Prints a Markdown table and one JSON line; `--picture=F.png` draws
the first images of each source side by side.

Without --features (a dataset with no class labels, e.g. an image folder, has no
feature network), only reconstructions:DIR sources are measured, by PSNR and SSIM
against the run's own first N test images; the table and the JSON line hold no FID,
precision, recall or class accuracy, and the JSON's features is null.
"""
import json

from absl import flags

from jaxvq import quality, sampling
from jaxvq.commands import sampling_flags

FLAGS = flags.FLAGS


def define_flags() -> None:
  flags.DEFINE_string("features", None, "Workdir of a feature network (`jaxvq features`); "
                      "without it, only reconstructions:DIR sources, by PSNR and SSIM.")
  flags.DEFINE_multi_string("images", None, "A source of images (repeat for several): "
                            "prior:DIR, marginal:DIR, vae:DIR, ae:DIR, reconstructions:DIR, "
                            "dataset:NAME:SPLIT.")
  flags.DEFINE_integer("num_images", 10000, "N, images per set and real test images.",
                       lower_bound=1)
  sampling_flags.define_flags()
  flags.DEFINE_integer("seed", 0, "Seed of the samples.")
  flags.DEFINE_string("picture", "", "Also draw the first --picture_columns images of each "
                      "source in this PNG, one row each (below the originals, for "
                      "reconstructions).")
  flags.DEFINE_integer("picture_columns", 12, "Images per row of --picture.", lower_bound=1)
  flags.mark_flags_as_required(["images"])


def main(argv):
  del argv
  extractor = quality.load_feature_extractor(FLAGS.features) if FLAGS.features else None
  options = sampling.given_options(**sampling_flags.options())
  rows = quality.measure_sources(FLAGS.images, extractor, FLAGS.num_images,
                                 temperature=FLAGS.temperature, seed=FLAGS.seed,
                                 sample_options=options, picture=FLAGS.picture,
                                 picture_columns=FLAGS.picture_columns)
  for row in rows:
    if row["source"].startswith("prior:"):
      row.update(temperature=FLAGS.temperature, **options)
  print(quality.format_table(rows))
  features = {"features": None, "dataset": None, "feature_test_accuracy": None}
  if extractor is not None:
    features = {"features": FLAGS.features, "dataset": extractor.dataset,
                "feature_test_accuracy": quality.read_description(FLAGS.features)[
                    "test_accuracy"]}
  print(json.dumps({**features, "rows": rows}))
