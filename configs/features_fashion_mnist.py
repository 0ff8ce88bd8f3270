"""The feature network of `jaxvq quality` on Fashion-MNIST: the "classifier" model.

  jaxvq features --dataset=fashion_mnist --workdir=workdirs/quality/features_fashion_mnist

(the same run as `python train.py --config=configs/features_fashion_mnist.py
--workdir=...`, which writes no features.json: `jaxvq features` on its workdir then
adds it). Adam at 1e-3, batch 128, 3,000 steps, 128 features; the config of any
other labelled dataset is `jaxvq.quality.features_config(dataset)`.
"""
from jaxvq.quality.features import features_config


def get_config():
  return features_config("fashion_mnist")
