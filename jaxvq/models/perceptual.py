"""Perceptual losses that need no downloaded weights: the distance between two images in the
features of a fixed network (`config.model.perceptual_network`).

  random         a VGG-like CNN with seeded random weights: random-weight deep features serve
                 as a perceptual loss about as well as a trained VGG's (Liu et al. 2021,
                 "Generic Perceptual Loss for Modeling Structured Output Dependencies")
  features:DIR   the conv layers of the classifier `jaxvq features` trained in DIR (the
                 feature network of `jaxvq quality`), on the user's own data
  lpips          LPIPS (Zhang et al. 2018) from the optional lpips-nnx package
                 (`pip install 'jaxvq[lpips]'`): its learned linear heads ship in its wheel,
                 its VGG16 weights are fetched on first use
  NAME           a network registered with `register(NAME, build)`: any nnx module with
                 `feature_maps(x)` or `distance(x, y)`, or any feature extractor with the
                 `outputs(x) -> (features, logits)` of jaxvq.quality.FeatureExtractor

The distance of feature maps is LPIPS's with unit weights (jaxvq.ops.adversarial.
feature_distance). A network's weights are held as `Frozen` variables: in the model state, so
saved in every checkpoint with the run (the loss is reproducible from the run alone) and never
given a gradient or an update.
"""
from __future__ import annotations

import os
from typing import Callable

import jax
import jax.numpy as jnp
from flax import nnx

from jaxvq.errors import ConfigError
from jaxvq.models.base import TrainedModel
from jaxvq.models.classifier import Classifier
from jaxvq.nets.layers import Conv
from jaxvq.ops.adversarial import feature_distance

RANDOM, FEATURES_PREFIX, LPIPS = "random", "features:", "lpips"


class Frozen(nnx.Variable):
  """A fixed weight: in the model state (checkpointed with the run), never trained."""


def freeze(module: nnx.Module) -> nnx.Module:
  """`module` with every nnx.Param turned into a Frozen variable of the same value, in place."""
  for _, node in list(nnx.iter_graph(module)):
    if isinstance(node, nnx.Module):
      for name, value in list(vars(node).items()):
        if isinstance(value, nnx.Param):
          setattr(node, name, Frozen(value.get_value()))
  left = nnx.state(module, nnx.Param)
  if jax.tree.leaves(left):
    raise ConfigError(f"the perceptual network {type(module).__name__} keeps parameters "
                      f"outside module attributes, which cannot be held fixed: give it its "
                      f"weights as attributes of its modules")
  return module


class RandomFeatures(nnx.Module):
  """A VGG-like CNN with fixed random weights (Liu et al. 2021): per width, two 3x3
  convolutions with ReLU (He-normal kernels, zero biases, so that the activations keep their
  scale through the depth), the block's output a feature map; 2x2 average pooling between
  blocks. Images in [0, 1] enter as 2x - 1."""

  def __init__(self, image_shape, widths, seed: int):
    height, width, channels = image_shape
    if min(height, width) < 2 ** (len(widths) - 1):
      raise ConfigError(f"config.model.perceptual_widths={tuple(widths)} pools the "
                        f"{height}x{width} images {len(widths) - 1} times, to nothing: give "
                        f"at most {min(height, width).bit_length()} widths")
    rngs = nnx.Rngs(params=seed)
    init = nnx.initializers.he_normal()
    convs, previous = [], channels
    for width in widths:
      convs += [Conv(previous, width, 3, 1, 1, kernel_init=init, rngs=rngs),
                Conv(width, width, 3, 1, 1, kernel_init=init, rngs=rngs)]
      previous = width
    self.convs = nnx.List(convs)
    freeze(self)

  def feature_maps(self, x: jax.Array) -> list:
    maps, h = [], 2.0 * x - 1.0
    for block in range(len(self.convs) // 2):
      if block:
        b, height, width, c = h.shape
        h = h[:, :height // 2 * 2, :width // 2 * 2].reshape(
            b, height // 2, 2, width // 2, 2, c).mean(axis=(2, 4))
      h = nnx.relu(self.convs[2 * block + 1](nnx.relu(self.convs[2 * block](h))))
      maps.append(h)
    return maps


class LPIPSNetwork(nnx.Module):
  """lpips-nnx's LPIPS on images in [0, 1]; a grayscale image enters as three equal channels."""

  def __init__(self, lpips: nnx.Module, channels: int):
    self.lpips, self.gray = freeze(lpips), channels == 1

  def distance(self, x: jax.Array, y: jax.Array) -> jax.Array:
    if self.gray:
      x, y = (jnp.repeat(v, 3, axis=-1) for v in (x, y))
    return self.lpips(x, y, normalize=True).reshape(x.shape[0])


class PerceptualNetwork(nnx.Module):
  """A fixed network and the distance of two images in it: `distance(x, y)` -> [B]."""

  def __init__(self, net):
    self.net = freeze(net) if isinstance(net, nnx.Module) else net

  def features(self, x: jax.Array) -> list:
    if hasattr(self.net, "feature_maps"):
      return self.net.feature_maps(x)
    features, _ = self.net.outputs(x)       # a FeatureExtractor: one vector per image
    return [features]

  def __call__(self, x: jax.Array, y: jax.Array) -> jax.Array:
    """[B] distances of images x and y [B, H, W, C] in [0, 1], float32."""
    if hasattr(self.net, "distance"):
      return self.net.distance(x, y).astype(jnp.float32)
    return feature_distance(self.features(x), self.features(y)).astype(jnp.float32)


# ------------------------------------------------------------------------- which network

def _lpips(image_shape) -> nnx.Module:
  """lpips-nnx's LPIPS (its VGG16 weights downloaded on first use to ~/.cache/lpips_nnx)."""
  if image_shape[-1] not in (1, 3):
    raise ConfigError(f"config.model.perceptual_network='lpips' takes RGB or grayscale images; "
                      f"these have {image_shape[-1]} channels: use 'random'")
  try:
    import lpips_nnx  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise ConfigError("config.model.perceptual_network='lpips' needs the lpips-nnx package: "
                      "pip install 'jaxvq[lpips]' (or use 'random', which needs no "
                      "weights)") from e
  try:
    net = lpips_nnx.LPIPS(rngs=nnx.Rngs(0))
  except Exception as e:  # pylint: disable=broad-except  (requests', safetensors' or OS errors)
    reason = " ".join(str(e).split())[:160] or type(e).__name__
    raise ConfigError(f"config.model.perceptual_network='lpips': lpips-nnx could not load its "
                      f"VGG16 weights ({reason}); it downloads them on first use to "
                      f"~/.cache/lpips_nnx/vgg16.safetensors: put that file there, or use "
                      f"'random', which needs no weights") from e
  return LPIPSNetwork(net, image_shape[-1])


_REGISTERED: dict = {LPIPS: _lpips}


def register(name: str, build: Callable) -> None:
  """Makes `config.model.perceptual_network=name` the network `build(image_shape)` returns
  (built once per setup, in the process that trains): an nnx module with
  `feature_maps(x) -> [[B, ..., C_l], ...]` or `distance(x, y) -> [B]` (its parameters are
  held fixed and saved with the run), or an object with `outputs(x) -> (features [B, F],
  logits)` as jaxvq.quality.FeatureExtractor has (a function: nothing of it is saved). Images
  are [B, H, W, C] in [0, 1]."""
  if name == RANDOM or name.startswith(FEATURES_PREFIX):
    raise ValueError(f"{name!r} is jaxvq's own perceptual network name; choose another")
  _REGISTERED[name] = build


def features_workdir(name: str) -> str | None:
  """DIR of 'features:DIR', else None."""
  return name[len(FEATURES_PREFIX):] if name.startswith(FEATURES_PREFIX) else None


def same_workdir(a: str, b: str) -> bool:
  return os.path.realpath(a) == os.path.realpath(b)


def name_problem(name: str) -> str | None:
  """Why `config.model.perceptual_network` cannot name a network, or None."""
  if name == RANDOM or name in _REGISTERED or features_workdir(name):
    return None
  return (f"config.model.perceptual_network={name!r} names no network: use 'random', "
          f"'features:DIR' (a `jaxvq features` workdir), 'lpips', or a name registered with "
          f"jaxvq.models.perceptual.register")


def load(name: str, image_shape, load_trained: Callable[[str], TrainedModel]
         ) -> PerceptualNetwork:
  """The network `name` names (not 'random', which the model builds itself), for images of
  `image_shape`; `load_trained(DIR)` loads the model trained in DIR.

  Raises:
    ConfigError or RunError, in one line, for a network that cannot be loaded or does not
    take these images.
  """
  workdir = features_workdir(name)
  if workdir is None:
    return PerceptualNetwork(_REGISTERED[name](tuple(image_shape)))
  trained = load_trained(workdir)
  if not isinstance(trained.model, Classifier):
    raise ConfigError(f"config.model.perceptual_network={name!r}: {workdir} holds a "
                      f"{type(trained.model).__name__} run, not a feature network: train one "
                      f"with `jaxvq features --dataset=DATASET --workdir={workdir}`")
  if trained.image_shape[-1] != image_shape[-1]:
    raise ConfigError(f"config.model.perceptual_network={name!r}: the feature network was "
                      f"trained on images of {trained.image_shape[-1]} channels, these have "
                      f"{image_shape[-1]}: train one on this dataset with `jaxvq features`")
  return PerceptualNetwork(trained.model)
