"""The VQ-VAE's upper bound on the test NLL in bits per dimension (van den Oord et al. 2017,
"Neural Discrete Representation Learning", section 4.1 and Table 1).

The encoder is deterministic: q(z | x) puts all its mass on x's codes z_q(x),
so the ELBO's KL term is -log p(z_q(x)) (the entropy of a one-hot q is 0) and

  log p(x) >= log p(x | z_q(x)) + log p(z_q(x)),

a valid lower bound for any encoder, with p(z) the prior (any with an exact likelihood) and
p(x | z) the VQ-VAE's decoder as a discrete likelihood of the 8-bit pixels
(`config.model.likelihood="discretized_gaussian"`). In bits per dimension:

  -log2 p(x) / D <= (prior's bits for the codes + decoder's bits for x given them) / D,

D = H x W x C (784 for Fashion-MNIST). A class-conditional prior gives
p(z | y): since p(x) >= p(y) p(x | y), a uniform p(y) over the classes adds
log2(num_classes) bits per image (the label's share, reported apart).

  bound = likelihood_bound.nll_bound("workdirs/prior")   # or: jaxvq bits --workdir=...

`prior_bits` is the prior's part alone (jaxvq bits --codes_only), for any prior and tokenizer:
its test bits per code over the tokenizer's test codes.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from jaxvq.data.batches import eval_batches
from jaxvq.errors import BoundError
from jaxvq.ops import likelihoods
from jaxvq.runtime import sharding
from jaxvq.tokens.runs import load_prior, load_tokenizer_of


def bound_bits_per_dim(prior_nats: jax.Array, decoder_nats: jax.Array, num_dims: int,
                       label_nats: float = 0.0) -> jax.Array:
  """-log2 p(x) / D <= (prior's NLL of the codes + decoder's NLL of x given them + the
  label's) / (D ln 2): [B] nats each -> [B] bits per dimension."""
  return likelihoods.nats_to_bits_per_dim(prior_nats + decoder_nats + label_nats, num_dims)


def _check_one_process_and_count(prior_workdir: str, num_examples: int) -> None:
  """Refuses, before anything is loaded, what neither computation can do."""
  if num_examples < 0:
    raise BoundError(f"num_examples {num_examples} is negative: give 0 (the whole test split) "
                     f"or a number of test examples")
  if jax.process_count() > 1:
    raise BoundError(f"the bits are computed by one process: compute them on one host "
                     f"({prior_workdir})")


def nll_bound(prior_workdir: str, num_examples: int = 0, batch_size: int = 500) -> dict:
  """The bound over the test split, from a prior and the VQ-VAE whose codes it learned.

  Args:
    prior_workdir: a trained prior's workdir (its dataset names the VQ-VAE).
    num_examples: the first this many test images (0: all of them).
    batch_size: images per compiled batch.

  Returns:
    {"examples", "num_dims", "bits_per_dim" (the bound), "prior_bits_per_dim",
     "decoder_bits_per_dim", "label_bits_per_dim", "prior_bits_per_code"}, each a mean
    over the examples.

  Raises:
    BoundError when the prior has no exact likelihood, or the VQ-VAE's decoder is no
    likelihood of the pixels (an MSE).
  """
  _check_one_process_and_count(prior_workdir, num_examples)
  prior_run = load_prior(prior_workdir)
  if not prior_run.model.HAS_LIKELIHOOD:
    raise BoundError(f"the {prior_run.config.model.name} prior in {prior_workdir} gives no exact "
                     f"likelihood of the codes, so it bounds nothing: use an autoregressive "
                     f"prior (pixelcnn)")
  vq_run = load_tokenizer_of(prior_run)
  if vq_run.config.model.likelihood != "discretized_gaussian":
    raise BoundError(
        f"the VQ-VAE in {vq_run.workdir} was trained with likelihood="
        f"{vq_run.config.model.likelihood!r}: an MSE is no likelihood of the 8-bit pixels, so "
        f"it bounds nothing; train one with --config.model.likelihood=discretized_gaussian "
        f"(configs/vqvae_likelihood_fashion_mnist.py) and a prior on its codes")
  vq_exp, prior = vq_run.experiment, prior_run.model
  test = vq_exp.dataset.test
  num = min(num_examples or len(test), len(test))
  num_dims = vq_run.model.num_dims
  label_nats = math.log(prior.num_classes) if prior.num_classes else 0.0
  key = jax.random.key(0)  # binarized data would draw its pixels from it

  def encode_and_decoder_nll(model, inputs):
    x = vq_exp.dataset.preprocess(inputs, key)
    codes = model.encode_to_indices(x)
    return codes, model.decoder_nll(x, codes)

  vq_step = vq_run.jit(encode_and_decoder_nll)
  prior_step = prior_run.jit(lambda model, codes, labels: model.code_nll(codes, labels))
  batch_size = sharding.round_up_to_devices(batch_size, vq_exp.mesh)
  batch_size = sharding.round_up_to_devices(batch_size, prior_run.experiment.mesh)
  prior_sum = decoder_sum = 0.0
  for indices, mask in eval_batches(num, batch_size):
    codes, decoder_nats = vq_step(sharding.shard_batch(test.inputs(indices), vq_exp.mesh))
    # Through the host: the two runs may use different meshes.
    codes, labels = np.asarray(sharding.to_host(codes)), test.labels(indices).astype(np.int32)
    prior_nats = prior_step(*sharding.shard_batch((codes, labels), prior_run.experiment.mesh))
    prior_sum += float(np.sum(np.asarray(sharding.to_host(prior_nats)) * mask))
    decoder_sum += float(np.sum(np.asarray(sharding.to_host(decoder_nats)) * mask))
  prior_nats, decoder_nats = prior_sum / num, decoder_sum / num
  to_bits = lambda nats: float(likelihoods.nats_to_bits_per_dim(nats, num_dims))
  return {"examples": num, "num_dims": num_dims,
          "bits_per_dim": float(bound_bits_per_dim(jnp.asarray(prior_nats),
                                                   jnp.asarray(decoder_nats), num_dims,
                                                   label_nats)),
          "prior_bits_per_dim": to_bits(prior_nats),
          "decoder_bits_per_dim": to_bits(decoder_nats),
          "label_bits_per_dim": to_bits(label_nats),
          "prior_bits_per_code": prior_nats / (math.prod(prior.grid_shape) * math.log(2.0))}


def prior_bits(prior_workdir: str, num_examples: int = 0, batch_size: int = 500) -> dict:
  """The prior's test bits per code over its tokenizer's test codes: -log2 p(codes | label)
  (given the test label, for a class-conditional prior) for a prior with an exact likelihood; for MaskGIT (no likelihood of its parallel decoder),
  the exact likelihood of its decoder that unmasks one code per step in raster order
  (`MaskGITPrior.ordered_nll`), which compares its conditionals with an autoregressive
  prior's.

  Returns:
    {"examples", "prior_bits_per_code", "likelihood": "exact" or "raster_one_code_per_step"}.
  """
  _check_one_process_and_count(prior_workdir, num_examples)
  prior_run = load_prior(prior_workdir)
  prior = prior_run.model
  if prior.HAS_LIKELIHOOD:
    likelihood, nll = "exact", lambda model, codes, labels: model.code_nll(codes, labels)
  elif hasattr(prior, "ordered_nll"):
    likelihood = "raster_one_code_per_step"
    nll = lambda model, codes, labels: model.ordered_nll(codes, labels)
  else:
    raise BoundError(f"the {prior_run.config.model.name} prior in {prior_workdir} gives no "
                     f"likelihood of the codes")
  test = prior_run.experiment.dataset.test
  num = min(num_examples or len(test), len(test))
  step = prior_run.jit(nll)
  mesh = prior_run.experiment.mesh
  batch_size = sharding.round_up_to_devices(min(batch_size, num), mesh)
  total = 0.0
  for indices, mask in eval_batches(num, batch_size):
    batch = (test.inputs(indices).astype(np.int32), test.labels(indices).astype(np.int32))
    nats = step(*sharding.shard_batch(batch, mesh))
    total += float(np.sum(np.asarray(sharding.to_host(nats)) * mask))
  return {"examples": num, "likelihood": likelihood,
          "prior_bits_per_code": total / (num * prior.num_positions * math.log(2.0))}
