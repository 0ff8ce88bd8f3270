"""Feature extractors for FID and class accuracy, and the small CNN classifier jaxvq trains.

Inception features mean little for 28x28 grayscale images, so, as MNIST-scale
papers do, each dataset gets its own classifier (the "classifier" model,
jaxvq/models/classifier.py), trained once on its training split by the training
loop (`jaxvq features --dataset=fashion_mnist --workdir=DIR`: `features_config`,
`train_and_evaluate`, then WORKDIR/features.json); the activations of its
penultimate dense layer are the features, its last layer's outputs the class
logits. Any other extractor plugs in through `FeatureExtractor`
(`FunctionExtractor` wraps a function, e.g. an Inception network with weights
the user provides for RGB data).

  extractor = load_feature_extractor("workdirs/features_fashion_mnist")
  features, logits = extractor(images)    # [N, H, W, C] uint8 or [0, 1] -> [N, F], [N, classes]
"""
from __future__ import annotations

import abc
import json
import os
from typing import Callable, Mapping, Optional

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import nnx

from jaxvq.config import get_config
from jaxvq.errors import DatasetError, RunError
from jaxvq.models.classifier import Classifier
from jaxvq.runtime import distributed, files
from jaxvq.train import checkpoint
from jaxvq.train import workdir as workdir_lib
from jaxvq.train.loop import train_and_evaluate
from jaxvq.train.run import load_data, load_run

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


class ClassifierExtractor(FeatureExtractor):
  """The features and logits of a `jaxvq.models.Classifier` (jaxvq's own extractor)."""

  def __init__(self, net: Classifier, image_shape: tuple, num_classes: int,
               feature_dim: int, dataset: Optional[str] = None):
    # On the host, so that each batch runs once on the default device (not on every
    # device of the mesh the run was trained on).
    self.graphdef, self.state = nnx.split(net)
    self.state = jax.device_get(self.state)
    self.image_shape, self.num_classes = tuple(image_shape), num_classes
    self.feature_dim = feature_dim
    self.dataset = dataset   # the dataset it was trained on: its test split is the reference

  def outputs(self, images):
    return nnx.merge(self.graphdef, self.state).features_and_logits(images)


# ----------------------------------------------------------------------- training and loading

def features_config(dataset: str = "fashion_mnist", *, num_steps: int = 3000,
                    batch_size: int = 128, learning_rate: float = 1e-3,
                    feature_dim: int = 128, seed: int = 0,
                    image_size: int = 0) -> ml_collections.ConfigDict:
  """The config of the feature network of `dataset`, a run of the "classifier" model that
  `jaxvq.train.train_and_evaluate` trains: Adam on the cross-entropy, constant learning rate,
  a test evaluation (loss, accuracy) every 1000 steps and at the end
  (configs/features_fashion_mnist.py is `features_config("fashion_mnist")`); `image_size`
  resizes the images (config.image_size; 0: the dataset's own), for runs that train on them
  resized."""
  config = get_config("classifier")
  config.dataset = dataset
  config.model.feature_dim = feature_dim
  config.update(num_train_steps=num_steps, batch_size=batch_size, learning_rate=learning_rate,
                seed=seed, image_size=image_size, log_every_steps=500)
  return config


def _command_flags(config: Mapping) -> dict:
  return {"num_steps": config["num_train_steps"], "batch_size": config["batch_size"],
          "learning_rate": config["learning_rate"],
          "feature_dim": config["model"]["feature_dim"], "seed": config["seed"],
          "image_size": config.get("image_size", 0)}


def features_command(config: Mapping, workdir: str) -> str:
  """The `jaxvq features` command that trains (or resumes, or completes) `config` in
  `workdir`: the flags where they differ from the defaults."""
  defaults = _command_flags(features_config())
  shown = "".join(f" --{k}={v}" for k, v in _command_flags(config).items() if v != defaults[k])
  return f"jaxvq features --dataset={config['dataset']} --workdir={workdir}{shown}"


def train_feature_network(dataset: str, workdir: str, *, num_steps: int = 3000,
                          batch_size: int = 128, learning_rate: float = 1e-3,
                          feature_dim: int = 128, seed: int = 0, image_size: int = 0,
                          num_devices: int = 0, overwrite: bool = False) -> dict:
  """Trains the classifier of `dataset` (`features_config`) in `workdir` with the training
  loop, resuming the run there if it has one, and writes WORKDIR/features.json.

  Args:
    dataset: a labelled image dataset (`jaxvq.load_dataset` names).
    workdir: where the run goes (checkpoints/, metrics.jsonl, config.json) and
      features.json; rerunning resumes there (a larger `num_steps` trains on).
    num_steps, batch_size, learning_rate: Adam on the cross-entropy; `seed` is the seed of
      the initialisation and of the data order.
    feature_dim: F, the size of the feature layer.
    image_size: the images resized to this square size (0: the dataset's own).
    num_devices: devices of the data mesh (config.num_devices; 0: all).
    overwrite: True: a run of another config in `workdir` is deleted (config.overwrite).

  Returns:
    The description written to features.json: the dataset, image shape, sizes, the recipe
    and the test accuracy over the whole test split (the loop's final evaluation).
  """
  config = features_config(dataset, num_steps=num_steps, batch_size=batch_size,
                           learning_rate=learning_rate, feature_dim=feature_dim, seed=seed,
                           image_size=image_size)
  config.update(num_devices=num_devices, overwrite=overwrite)
  data = load_data(config)
  test_metrics = train_and_evaluate(config, workdir)   # those of its last step
  num_test = len(data.test)
  # The loop averages in float32: the fraction of correct test images, exactly.
  correct = round(test_metrics["accuracy"] * num_test)
  step = checkpoint.latest_step(os.path.join(workdir, "checkpoints"))
  description = {"dataset": dataset, "image_shape": list(data.image_shape),
                 "num_classes": data.num_classes, "feature_dim": feature_dim,
                 "step": step, "batch_size": batch_size, "learning_rate": learning_rate,
                 "seed": seed, "test_accuracy": correct / num_test,
                 "num_test_images": num_test, "run_id": workdir_lib.run_id(workdir)}
  if distributed.is_main_process():
    files.write_atomically(os.path.join(workdir, FEATURES_FILE),
                           json.dumps(description, indent=2) + "\n")
  return description


# What features.json holds, and each entry's type.
DESCRIPTION = {"dataset": str, "image_shape": list, "num_classes": int, "feature_dim": int,
               "step": int, "batch_size": int, "learning_rate": (int, float), "seed": int,
               "test_accuracy": (int, float), "num_test_images": int, "run_id": str}


def _saved_config(workdir: str) -> Optional[dict]:
  """The workdir's config.json, or None where it has none or cannot be read."""
  try:
    saved = workdir_lib.saved_config(workdir)
  except (RunError, OSError, UnicodeDecodeError):
    return None
  return saved if isinstance(saved, dict) else None


def _rebuild(workdir: str) -> str:
  """The command that trains, completes or resumes the feature network in `workdir`."""
  saved = _saved_config(workdir)
  try:
    return features_command(saved, workdir)
  except (KeyError, TypeError):
    return f"jaxvq features --dataset=DATASET --workdir={workdir}"


def read_description(workdir: str) -> dict:
  """WORKDIR/features.json: the dataset, image shape, sizes and test accuracy of the network;
  a missing or damaged one is refused in one line naming the command that rebuilds it."""
  path = os.path.join(workdir, FEATURES_FILE)
  if not os.path.exists(path):
    raise RunError(f"{path} is missing, so {workdir} holds no finished feature network: train "
                   f"(or finish) it with `{_rebuild(workdir)}`")
  try:
    with open(path) as f:
      description = json.load(f)
  except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
    raise RunError(f"{path} is damaged ({e}): rebuild it with `{_rebuild(workdir)}`") from e
  wrong = ([k for k, kind in DESCRIPTION.items() if not isinstance(description.get(k), kind)]
           if isinstance(description, dict) else ["the whole file"])
  if wrong:
    raise RunError(f"{path} is damaged ({', '.join(wrong)} missing or of the wrong type): "
                   f"rebuild it with `{_rebuild(workdir)}`")
  return description


def _earlier_command(workdir: str) -> str:
  """The `jaxvq features` command that retrains, in a new workdir, the network an earlier
  jaxvq trained in `workdir` (from its features.json)."""
  try:
    with open(os.path.join(workdir, FEATURES_FILE)) as f:
      d = json.load(f)
    return features_command(
        {"dataset": d["dataset"], "num_train_steps": d["step"], "batch_size": d["batch_size"],
         "learning_rate": d["learning_rate"], "model": {"feature_dim": d["feature_dim"]},
         "seed": d["seed"]}, "NEW_DIR")
  except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError):
    return "jaxvq features --dataset=DATASET --workdir=NEW_DIR"


def _check_workdir(workdir: str) -> None:
  """Refuses, in one line, a workdir that holds no run of the classifier."""
  if not os.path.isdir(workdir):
    raise RunError(f"{workdir} does not exist: train a feature network there with "
                   f"`{_rebuild(workdir)}`")
  config_path = os.path.join(workdir, "config.json")
  if not os.path.exists(config_path):
    if os.path.exists(os.path.join(workdir, FEATURES_FILE)):
      raise RunError(f"{workdir} holds a feature network of an earlier jaxvq (no config.json: "
                     f"its own checkpoint layout), which this one does not load: retrain it "
                     f"with `{_earlier_command(workdir)}`")
    raise RunError(f"{workdir} holds no feature network ({config_path} is missing): train one "
                   f"with `{_rebuild(workdir)}`")
  model = (_saved_config(workdir) or {}).get("model")
  name = model.get("name") if isinstance(model, dict) else None
  if name != "classifier":
    what = f"a {name} run" if isinstance(name, str) else "no readable run config"
    raise RunError(f"{config_path} holds {what}, not a feature network (the classifier): give "
                   f"the workdir of `jaxvq features --dataset=DATASET --workdir=DIR`")


def load_feature_extractor(workdir: str) -> ClassifierExtractor:
  """workdir -> the `ClassifierExtractor` of the feature network trained there
  (`jaxvq features`, `train_feature_network`), at the step features.json describes.

  Raises:
    RunError, in one line naming the command that rebuilds it, for a workdir that holds
    no classifier run, a missing or damaged features.json, or one that does not describe
    the run's latest checkpoint.
  """
  _check_workdir(workdir)
  description = read_description(workdir)
  run = load_run(workdir)
  model_config = run.config.model
  found = {"run_id": run.run_id, "dataset": run.config.dataset, "step": run.step,
           "image_shape": list(run.experiment.dataset.image_shape),
           "num_classes": model_config.num_classes, "feature_dim": model_config.feature_dim}
  differ = [f"{k} {description[k]!r} in {FEATURES_FILE}, {v!r} in the run"
            for k, v in found.items() if description[k] != v]
  if differ:
    raise RunError(f"{os.path.join(workdir, FEATURES_FILE)} does not describe the run in "
                   f"{workdir} ({'; '.join(differ)}): rebuild it with `{_rebuild(workdir)}`")
  return ClassifierExtractor(run.model, description["image_shape"], description["num_classes"],
                             description["feature_dim"], description["dataset"])
