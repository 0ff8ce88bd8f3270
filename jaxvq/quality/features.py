"""Feature extractors for FID and class accuracy, and the small CNN classifier jaxvq trains.

Inception features mean little for 28x28 grayscale images, so, as MNIST-scale
papers do, each dataset gets its own classifier, trained once on its training
split (`jaxvq features --dataset=fashion_mnist --workdir=DIR`); the activations
of its penultimate dense layer are the features, its last layer's outputs the
class logits. Any other extractor plugs in through `FeatureExtractor`
(`FunctionExtractor` wraps a function, e.g. an Inception network with weights
the user provides for RGB data).

  extractor = load_feature_extractor("workdirs/features_fashion_mnist")
  features, logits = extractor(images)    # [N, H, W, C] uint8 or [0, 1] -> [N, F], [N, classes]
"""
from __future__ import annotations

import abc
import json
import os
from typing import Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from jaxvq.data import load_dataset
from jaxvq.errors import DatasetError, RunError
from jaxvq.train import workdir as workdir_lib
from jaxvq.train.checkpoint import Checkpointer
from jaxvq.train.metrics_writer import MetricsWriter

FEATURES_FILE = "features.json"


class FeatureExtractor(abc.ABC):
  """images [N, H, W, C] (uint8, or float in [0, 1]) -> (features [N, F], logits [N, K] or None).

  A subclass sets `image_shape` (H, W, C), `feature_dim` and `num_classes` (0: no logits)
  and implements `outputs` on one float batch; batching, the [0, 1] scaling and the
  shape check are done here.
  """
  image_shape: tuple
  feature_dim: int
  num_classes: int = 0

  @abc.abstractmethod
  def outputs(self, images: jax.Array) -> tuple:
    """images [B, H, W, C] float32 in [0, 1] -> (features [B, F], logits [B, K] or None);
    traced once by jax.jit."""

  def check_shape(self, shape: tuple, what: str = "the images") -> None:
    """Refuses images of another shape than the extractor's, in one line."""
    if tuple(shape) != tuple(self.image_shape):
      raise DatasetError(f"{what} are {tuple(shape)} (H, W, C) but the feature extractor "
                         f"takes {tuple(self.image_shape)}: use a feature network trained on "
                         f"this dataset (`jaxvq features --dataset=...`)")

  def __call__(self, images: np.ndarray, batch_size: int = 500) -> tuple:
    images = np.asarray(images)
    self.check_shape(images.shape[1:])
    if not hasattr(self, "_compiled"):
      self._compiled = jax.jit(self.outputs)
    features, logits = [], []
    for start in range(0, len(images), batch_size):
      batch = images[start:start + batch_size]
      batch = (batch.astype(np.float32) / 255.0 if batch.dtype == np.uint8
               else batch.astype(np.float32))
      f, l = self._compiled(jnp.asarray(batch))
      features.append(np.asarray(f, np.float32))
      if l is not None:
        logits.append(np.asarray(l, np.float32))
    return np.concatenate(features), (np.concatenate(logits) if logits else None)


class FunctionExtractor(FeatureExtractor):
  """An extractor from any function fn(images [B, H, W, C] float in [0, 1]) -> features [B, F]
  or (features, logits): a user's own network, e.g. Inception with the weights they provide."""

  def __init__(self, fn: Callable, image_shape: tuple, feature_dim: int, num_classes: int = 0):
    self.fn, self.image_shape = fn, tuple(image_shape)
    self.feature_dim, self.num_classes = feature_dim, num_classes

  def outputs(self, images):
    out = self.fn(images)
    return out if isinstance(out, tuple) else (out, None)


class FeatureClassifier(nnx.Module):
  """A small CNN classifier: [B, H, W, C] in [0, 1] -> (features [B, F], logits [B, K]).

  A 3x3 and two 4x4 convolutions (16, 32, 64 channels; the last two stride 2, so 28x28
  becomes 7x7), a dense layer of F units (the features, after ReLU), and a linear layer to
  the K class logits.
  """

  def __init__(self, image_shape: tuple, num_classes: int, feature_dim: int = 128, *,
               rngs: nnx.Rngs):
    height, width, channels = image_shape
    self.conv1 = nnx.Conv(channels, 16, (3, 3), padding=1, rngs=rngs)
    self.conv2 = nnx.Conv(16, 32, (4, 4), strides=2, padding=1, rngs=rngs)
    self.conv3 = nnx.Conv(32, 64, (4, 4), strides=2, padding=1, rngs=rngs)
    flat = 64 * (-(-height // 4)) * (-(-width // 4))
    self.features = nnx.Linear(flat, feature_dim, rngs=rngs)
    self.classes = nnx.Linear(feature_dim, num_classes, rngs=rngs)

  def __call__(self, x: jax.Array) -> tuple:
    x = x - 0.5
    for conv in (self.conv1, self.conv2, self.conv3):
      x = nnx.relu(conv(x))
    features = nnx.relu(self.features(x.reshape(x.shape[0], -1)))   # [B, F]
    return features, self.classes(features)


class ClassifierExtractor(FeatureExtractor):
  """The features and logits of a `FeatureClassifier` (jaxvq's own extractor)."""

  def __init__(self, net: FeatureClassifier, image_shape: tuple, num_classes: int,
               feature_dim: int, dataset: Optional[str] = None):
    self.graphdef, self.state = nnx.split(net)
    self.image_shape, self.num_classes = tuple(image_shape), num_classes
    self.feature_dim = feature_dim
    self.dataset = dataset   # the dataset it was trained on: its test split is the reference

  def outputs(self, images):
    return nnx.merge(self.graphdef, self.state)(images)


# ----------------------------------------------------------------------- training and loading

def read_description(workdir: str) -> dict:
  """WORKDIR/features.json: the dataset, image shape, sizes and test accuracy of the network."""
  path = os.path.join(workdir, FEATURES_FILE)
  if not os.path.exists(path):
    raise RunError(f"{workdir} holds no feature network: train one with `python -m jaxvq "
                   f"features --dataset=DATASET --workdir={workdir}`")
  with open(path) as f:
    return json.load(f)


def load_feature_extractor(workdir: str) -> ClassifierExtractor:
  """workdir -> the `ClassifierExtractor` of the feature network `train_feature_network`
  trained there."""
  description = read_description(workdir)
  net = FeatureClassifier(tuple(description["image_shape"]), description["num_classes"],
                          description["feature_dim"], rngs=nnx.Rngs(0))
  checkpointer = Checkpointer(os.path.join(workdir, "checkpoints"), read_only=True)
  state = checkpointer.restore(description["step"], nnx.state(net))
  checkpointer.close()
  nnx.update(net, state)
  return ClassifierExtractor(net, description["image_shape"], description["num_classes"],
                             description["feature_dim"], description["dataset"])


def classifier_accuracy(net: FeatureClassifier, images: np.ndarray, labels: np.ndarray,
                        batch_size: int = 500) -> float:
  """The fraction of uint8 `images` [N, H, W, C] the classifier labels as `labels` [N]."""
  graphdef, state = nnx.split(net)
  predict = jax.jit(lambda state, x: jnp.argmax(
      nnx.merge(graphdef, state)(x.astype(jnp.float32) / 255.0)[1], axis=-1))
  correct = sum(int(np.sum(np.asarray(predict(state, images[i:i + batch_size]))
                           == labels[i:i + batch_size]))
                for i in range(0, len(images), batch_size))
  return correct / len(images)


def train_feature_network(dataset: str, workdir: str, *, num_steps: int = 3000,
                          batch_size: int = 128, learning_rate: float = 1e-3,
                          feature_dim: int = 128, seed: int = 0,
                          log: Optional[Callable] = print) -> dict:
  """Trains a `FeatureClassifier` on `dataset`'s training split, saves it in `workdir`.

  Args:
    dataset: a labelled image dataset (`jaxvq.load_dataset` names).
    workdir: where checkpoints/, features.json and metrics.jsonl go; one that already holds
      a feature network is refused.
    num_steps, batch_size, learning_rate: Adam on the cross-entropy, one seed for the init
      and the data order.
    feature_dim: F, the size of the feature layer.
    log: called with a line every 500 steps and at the end (None: silent).

  Returns:
    The description written to features.json, with the test accuracy over the whole
    test split.
  """
  workdir_lib.check_path(workdir)
  if os.path.exists(os.path.join(workdir, FEATURES_FILE)):
    raise RunError(f"{workdir} already holds a feature network: give another --workdir, or "
                   f"delete it to train again")
  data = load_dataset(dataset)
  if not data.num_classes:
    raise DatasetError(f"{dataset} has no labels: the feature network is a classifier")
  image_shape = tuple(data.image_shape)
  train_images = data.train.inputs(np.arange(len(data.train)))
  train_labels = data.train.labels(np.arange(len(data.train)))
  os.makedirs(workdir, exist_ok=True)
  with workdir_lib.lock(workdir):
    net = FeatureClassifier(image_shape, data.num_classes, feature_dim, rngs=nnx.Rngs(seed))
    optimizer = optax.adam(learning_rate)
    graphdef, params = nnx.split(net)
    opt_state = optimizer.init(params)

    @jax.jit
    def train_step(params, opt_state, images, labels):
      def loss_fn(params):
        _, logits = nnx.merge(graphdef, params)(images.astype(jnp.float32) / 255.0)
        return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
      loss, grads = jax.value_and_grad(loss_fn)(params)
      updates, opt_state = optimizer.update(grads, opt_state, params)
      return optax.apply_updates(params, updates), opt_state, loss

    writer = MetricsWriter(workdir)
    rng = np.random.default_rng(seed)
    order, position, losses = rng.permutation(len(train_images)), 0, []
    for step in range(1, num_steps + 1):
      if position + batch_size > len(order):
        order, position = rng.permutation(len(train_images)), 0
      idx = order[position:position + batch_size]
      position += batch_size
      params, opt_state, loss = train_step(params, opt_state, train_images[idx],
                                           train_labels[idx])
      losses.append(loss)
      if step % 500 == 0 or step == num_steps:
        mean_loss = float(np.mean(jax.device_get(losses)))
        losses = []
        writer.write(step, "train", {"loss": mean_loss})
        if log:
          log(f"step {step}/{num_steps}  loss {mean_loss:.4f}")
    nnx.update(net, params)
    test_images = data.test.inputs(np.arange(len(data.test)))
    test_accuracy = classifier_accuracy(net, test_images,
                                        data.test.labels(np.arange(len(data.test))))
    writer.write(num_steps, "test", {"accuracy": test_accuracy})
    writer.close()
    checkpointer = Checkpointer(os.path.join(workdir, "checkpoints"))
    checkpointer.save(num_steps, nnx.state(net))
    checkpointer.wait()
    checkpointer.close()
    description = {"dataset": dataset, "image_shape": list(image_shape),
                   "num_classes": data.num_classes, "feature_dim": feature_dim,
                   "step": num_steps, "batch_size": batch_size, "learning_rate": learning_rate,
                   "seed": seed, "test_accuracy": test_accuracy,
                   "num_test_images": len(test_images)}
    with open(os.path.join(workdir, FEATURES_FILE), "w") as f:
      json.dump(description, f, indent=2)
    if log:
      log(f"test accuracy {test_accuracy:.4f} on the {len(test_images)} test images; "
          f"wrote {workdir}")
  return description
