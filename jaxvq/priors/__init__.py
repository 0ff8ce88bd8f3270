"""Priors over a tokenizer's code grids: each file defines one, registered by its
`config.model.name` (jaxvq/registry.py) when this package loads it.

  base.py      the Prior interface: -log p(codes | label), sample(key, n, labels, ...), and
               the grid, K and classes it models; the loss and metrics every prior reports
  pixelcnn.py  the gated PixelCNN (van den Oord et al. 2016) and its row-cached sampler
  transformer.py  a GPT-style causal transformer (taming-transformers, LlamaGen) and its
               key/value-cached sampler with top-k, top-p and classifier-free guidance
  maskgit.py   MaskGIT (Chang et al. 2022): a bidirectional transformer over masked codes,
               sampled by parallel decoding (no exact likelihood)

A new prior is one new file here (a subclass of Prior) and its config in configs/.
"""
import importlib
import pkgutil

from jaxvq.priors.base import Prior

__all__ = ["Prior"]

for _module in pkgutil.iter_modules(__path__):
  importlib.import_module(f"{__name__}.{_module.name}")
