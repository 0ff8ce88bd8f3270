"""The VQ-VAE's quantizers, chosen by `config.model.quantizer.name`, each with the same
interface (base.py) and its own config section:

  vq.py        nearest code (van den Oord et al. 2017): EMA, k-means, restarts, cosine or
               low-dimensional codes, the rotation trick, an entropy loss
  fsq.py       finite scalar quantization (Mentzer et al. 2023)
  lfq.py       lookup-free quantization with its entropy loss (Yu et al. 2023, MAGVIT-v2)
  residual.py  residual VQ with quantizer dropout (Zeghidour et al. 2021, SoundStream)

The math of each is in jaxvq/ops as pure functions.
"""
from jaxvq.errors import ConfigError
from jaxvq.models.quantizers.base import CodebookStatistic, Quantizer, QuantizerOutput
from jaxvq.models.quantizers.fsq import FiniteScalarQuantizer
from jaxvq.models.quantizers.lfq import LookupFreeQuantizer
from jaxvq.models.quantizers.residual import ResidualVectorQuantizer
from jaxvq.models.quantizers.vq import VectorQuantizer

QUANTIZERS = {"vq": VectorQuantizer, "fsq": FiniteScalarQuantizer, "lfq": LookupFreeQuantizer,
              "residual_vq": ResidualVectorQuantizer}


def quantizer_class(name: str) -> type:
  if name not in QUANTIZERS:
    raise ConfigError(f"unknown model.quantizer.name {name!r}; choose one of {sorted(QUANTIZERS)}")
  return QUANTIZERS[name]
