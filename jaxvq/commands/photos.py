"""Makes a folder of real photo crops offline: jaxvq photos --output=DIR [--num=N] [--size=S]

Random square crops of the photographs that ship inside scikit-image (jaxvq/data/photos.py),
resized to SxS and saved as PNG files, for the photo configs on a machine that cannot
download CIFAR-10 or ImageNet:

  jaxvq photos --output=photos64 --num=6000 --size=64
  python train.py --config=configs/vqgan_imagenet128.py --config.dataset=folder:photos64 \\
      --config.image_size=64 --workdir=workdirs/photos64

The crops share sixteen scenes, so the folder's test split holds out crops, not scenes.
"""
import json

from absl import flags

from jaxvq.data.photos import save_photo_crops

FLAGS = flags.FLAGS


def define_flags() -> None:
  flags.DEFINE_string("output", None, "A new folder for the crops (refused if it holds "
                      "anything).")
  flags.DEFINE_integer("num", 5000, "How many crops.")
  flags.DEFINE_integer("size", 64, "Their side in pixels.")
  flags.DEFINE_integer("seed", 0, "The crops' seed (the same seed writes the same files).")
  flags.mark_flags_as_required(["output"])


def main(argv):
  del argv
  print(json.dumps(save_photo_crops(FLAGS.output, FLAGS.num, FLAGS.size, FLAGS.seed)))
