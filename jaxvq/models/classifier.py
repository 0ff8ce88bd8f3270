"""A small CNN classifier of a labelled image dataset: the feature network of `jaxvq quality`.

Trained on softmax cross-entropy with the labels by the one training loop (its config:
`jaxvq.quality.features_config(dataset)`, configs/features_fashion_mnist.py); the
activations of its penultimate dense layer are the features FID and precision/recall
are computed in, its logits give the class accuracy (jaxvq/quality/features.py).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from jaxvq.errors import DatasetError
from jaxvq.models.base import Model, ModelOutput
from jaxvq.schema import Field


class Classifier(Model):
  """x [B, H, W, C] in [0, 1] -> (features [B, F], logits [B, K]).

  A 3x3 and two 4x4 convolutions (16, 32, 64 channels; the last two stride 2, so 28x28
  becomes 7x7), a dense layer of F units (the features, after ReLU), and a linear layer to
  the K class logits.
  """

  CONFIG = {
      "name": Field("classifier", "the model", choices=("classifier",)),
      "feature_dim": Field(128, "F, units of the feature layer", minimum=1),
      "num_classes": Field(0, "K, the classes of the dataset's labels", derived=True),
  }
  SUMMARY_METRICS = ("accuracy",)

  @classmethod
  def configure(cls, model_config, dataset):
    """K from the dataset's labels; a dataset without labels is refused."""
    if not getattr(dataset, "num_classes", 0):
      raise DatasetError(f"{dataset.name} has no labels: the classifier (the feature network "
                         f"of `jaxvq quality`) trains on a labelled image dataset")
    model_config = model_config.copy_and_resolve_references()
    model_config.num_classes = dataset.num_classes
    return model_config

  def __init__(self, cfg, image_shape, *, data_variance: float = 1.0, dtype=jnp.float32,
               rngs: nnx.Rngs):
    del data_variance  # a classifier has no reconstruction to scale
    height, width, channels = image_shape
    layer = dict(dtype=dtype, rngs=rngs)
    self.conv1 = nnx.Conv(channels, 16, (3, 3), padding=1, **layer)
    self.conv2 = nnx.Conv(16, 32, (4, 4), strides=2, padding=1, **layer)
    self.conv3 = nnx.Conv(32, 64, (4, 4), strides=2, padding=1, **layer)
    flat = 64 * (-(-height // 4)) * (-(-width // 4))
    self.features = nnx.Linear(flat, cfg.feature_dim, **layer)
    self.classes = nnx.Linear(cfg.feature_dim, cfg.num_classes, **layer)

  def feature_maps(self, x: jax.Array) -> list:
    """x [B, H, W, C] in [0, 1] -> the three conv layers' activations [B, H_l, W_l, C_l] (a
    perceptual loss's features: jaxvq/models/perceptual.py)."""
    maps, x = [], x - 0.5
    for conv in (self.conv1, self.conv2, self.conv3):
      x = nnx.relu(conv(x))
      maps.append(x)
    return maps

  def features_and_logits(self, x: jax.Array) -> tuple:
    """x [B, H, W, C] in [0, 1] -> (features [B, F], logits [B, K]), float32."""
    x = self.feature_maps(x)[-1]
    features = nnx.relu(self.features(x.reshape(x.shape[0], -1)))
    logits = self.classes(features)
    return features.astype(jnp.float32), logits.astype(jnp.float32)

  def __call__(self, x: jax.Array, key: jax.Array, labels=None,
               training: bool = False) -> ModelOutput:
    del key, training  # deterministic
    if labels is None:
      raise ValueError("the classifier's loss needs the labels")
    _, logits = self.features_and_logits(x)
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels)          # [B]
    accuracy = (jnp.argmax(logits, axis=-1) == labels).astype(jnp.float32)          # [B]
    return ModelOutput(loss=jnp.mean(loss), per_example={"loss": loss, "accuracy": accuracy})
