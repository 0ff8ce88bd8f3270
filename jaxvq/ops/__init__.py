"""The math, as pure functions of explicit arrays (no modules, no state of their own).

  vq.py           nearest-code quantization, the straight-through estimator, code statistics
  codebook.py     keeping a codebook alive: EMA updates, k-means, dead-code restart
  likelihoods.py  the VAE's Gaussian and Bernoulli math, importance weights, bits per dim
  conv_kernels.py the 4x4 stride-2 transposed convolution and strided convolution as matrix
                  products, with their backward passes
  reduce.py       per-example sums and means
"""
