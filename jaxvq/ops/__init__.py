"""The math, as pure functions of explicit arrays (no modules, no state of their own).

  vq.py           nearest-code quantization, the straight-through estimator, code statistics,
                  l2 normalisation, the rotation trick
  codebook.py     keeping a codebook alive: EMA updates, k-means, dead-code restart
  entropy.py      entropies, and the entropy loss that keeps a codebook in use (VQ, LFQ)
  fsq.py          finite scalar quantization (Mentzer et al. 2023)
  lfq.py          lookup-free quantization (MAGVIT-v2)
  residual_vq.py  residual vector quantization (SoundStream)
  likelihoods.py  the VAE's Gaussian and Bernoulli math, importance weights, bits per dim
  conv_kernels.py the 4x4 stride-2 transposed convolution and strided convolution as matrix
                  products, with their backward passes
  reduce.py       per-example sums and means
"""
