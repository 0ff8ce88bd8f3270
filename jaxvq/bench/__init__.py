"""Benchmarks: what `jaxvq bench` and `jaxvq compare` measure. Nothing in the library or the
user commands imports from here.

  step.py          a config's compiled train step: ms, images/s, GFLOP, fraction of peak
  layers.py        each layer, forward and forward + backward
  formulations.py  jaxvq's layer formulations and XLA options against the plain ones
  peers.py         another program (the PyTorch reference) in turns with jaxvq
  sampling.py      the prior's three samplers
  variants.py      a VQ-VAE config trained in several codebook variants
  timing.py        wall time of compiled calls
"""
