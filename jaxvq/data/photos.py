"""A folder of real photographs made offline: random square crops of the photos that ship
inside scikit-image, resized to one size and saved as PNG files.

It is for machines that cannot download CIFAR-10 or ImageNet: the photo configs
(configs/vqvae_imagenet128.py, configs/vqgan_imagenet128.py, ...) can train on it through
`config.dataset=folder:DIR`. Every crop comes from sixteen photos, so the folder's
random 90/10 split holds out crops, not scenes: a test number measured on it says how well a
model fits these photos, not how it generalises to new ones.
"""
from __future__ import annotations

import os
import tempfile

import numpy as np

from jaxvq.errors import DatasetError

# scikit-image's photographs (not its drawings, charts or synthetic images): RGB, then
# grayscale ones, read as RGB.
RGB_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "retina",
              "immunohistochemistry", "motorcycle_left")
GRAY_PHOTOS = ("camera", "moon", "coins", "brick", "grass", "gravel", "cell", "clock")


def _photos() -> dict:
  """{name: uint8 [H, W, 3]} of the photos, from the files scikit-image installs."""
  try:
    from skimage import data  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise DatasetError("making photo crops needs scikit-image: pip install 'jaxvq[photos]' "
                       "(or pip install scikit-image)") from e
  photos = {}
  for name in RGB_PHOTOS + GRAY_PHOTOS:
    image = data.stereo_motorcycle()[0] if name == "motorcycle_left" else getattr(data, name)()
    image = np.asarray(image)
    if image.ndim == 2:
      image = np.repeat(image[..., None], 3, axis=-1)
    photos[name] = image[..., :3].astype(np.uint8)
  return photos


def save_photo_crops(output: str, num: int, size: int = 64, seed: int = 0) -> dict:
  """Writes `num` crops of `size` x `size` pixels as OUTPUT/NAME_NNNNN.png and returns what
  it wrote ({"output", "num", "size", "photos": {name: count}}).

  Each crop: a photo drawn uniformly, a square side drawn uniformly between `size` and half
  the photo's shorter side (at least `size`), a uniform position, resized with Lanczos
  filtering. The same seed writes the same files. Refuses, before writing anything, an
  output that exists and is not an empty folder (nothing of the user's is overwritten), a
  `num` below 1 and a `size` below 8 or larger than a photo.
  """
  from PIL import Image  # pylint: disable=g-import-not-at-top
  if num < 1:
    raise DatasetError(f"num {num}: give at least 1 crop")
  if os.path.exists(output) and (not os.path.isdir(output) or os.listdir(output)):
    raise DatasetError(f"output {output!r} exists and is not an empty folder: give a new path "
                       f"(nothing there is overwritten)")
  photos = _photos()
  smallest = min(min(p.shape[:2]) for p in photos.values())
  if not 8 <= size <= smallest:
    raise DatasetError(f"size {size}: give a crop size in [8, {smallest}] pixels (the "
                       f"smallest photo's shorter side)")
  rng = np.random.default_rng(seed)
  names = sorted(photos)
  counts = dict.fromkeys(names, 0)
  # Written into a new hidden folder beside OUTPUT, then renamed: a killed run leaves no half
  # folder at OUTPUT, and nothing already on disk is written into.
  parent = os.path.dirname(os.path.abspath(output))
  os.makedirs(parent, exist_ok=True)
  partial = tempfile.mkdtemp(prefix=f".{os.path.basename(output.rstrip(os.sep))}.", dir=parent)
  for i in range(num):
    name = names[rng.integers(len(names))]
    photo = photos[name]
    h, w = photo.shape[:2]
    side = int(rng.integers(size, max(size, min(h, w) // 2) + 1))
    top, left = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
    crop = Image.fromarray(photo[top:top + side, left:left + side])
    crop.resize((size, size), Image.LANCZOS).save(os.path.join(partial, f"{name}_{i:05d}.png"))
    counts[name] += 1
  if os.path.isdir(output):
    os.rmdir(output)   # empty, checked above
  os.replace(partial, output)
  return {"output": output, "num": num, "size": size, "photos": counts}
