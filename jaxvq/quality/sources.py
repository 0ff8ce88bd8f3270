"""The sets of images `jaxvq quality` measures, each named by a source string:

  prior:PRIOR_WORKDIR          a prior's samples, decoded by its VQ-VAE (every class in
                               turn for a class-conditional prior), at a softmax temperature
  marginal:VQVAE_WORKDIR       the VQ-VAE decoding codes drawn independently at each position
                               from that position's code frequencies in the training codes
                               (no spatial prior: the ablation of a prior)
  vae:VAE_WORKDIR              a VAE's samples, z ~ N(0, I) decoded to E[x|z]
  ae:AE_WORKDIR                an autoencoder's samples: z from a diagonal Gaussian fitted to
                               the latents of its training split
  reconstructions:WORKDIR      an AE's, VAE's or VQ-VAE's reconstructions of the test split
  dataset:NAME:SPLIT           a dataset split (the first N of the test split, a seeded random
                               N of the training split)

Only reconstructions are measured without a feature network (PSNR and SSIM against their
originals; `check_without_features`): every other set needs one.
"""
from __future__ import annotations

import dataclasses
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

from jaxvq import sampling
from jaxvq.data import load_dataset
from jaxvq.errors import ConfigError, DatasetError
from jaxvq.tokens import codes as codes_lib
from jaxvq.tokens.runs import load_prior, load_tokenizer_of
from jaxvq.train.run import load_run

KINDS = ("prior", "marginal", "vae", "ae", "reconstructions", "dataset")
WITHOUT_FEATURES = ("reconstructions",)   # the kinds measured with no feature network


@dataclasses.dataclass
class ImageSet:
  """N images with what the metrics need to know about them."""
  source: str                   # the source string
  images: np.ndarray            # [N, H, W, C] uint8, or float in [0, 1]
  labels: Optional[np.ndarray] = None       # [N] the classes drawn for (or the split's labels)
  references: Optional[np.ndarray] = None   # [N, H, W, C] the originals of reconstructions

  @property
  def is_reconstruction(self) -> bool:
    return self.references is not None


def _parse(source: str) -> tuple:
  kind, _, where = source.partition(":")
  if kind not in KINDS or not where:
    raise ConfigError(f"--images={source} is not a source of images: one of prior:DIR, "
                      f"marginal:DIR, vae:DIR, ae:DIR, reconstructions:DIR or dataset:NAME:SPLIT")
  return kind, where


def check_without_features(source: str) -> None:
  """Refuses, in one line, a source that cannot be measured without a feature network."""
  kind, _ = _parse(source)
  if kind not in WITHOUT_FEATURES:
    raise ConfigError(f"--images={source} needs --features=DIR, a feature network from "
                      f"`jaxvq features` (its FID, precision and recall are measured in the "
                      f"network's features); without --features only reconstructions:DIR "
                      f"sources are measured (PSNR, SSIM)")


def _chunks(num: int, chunk: int):
  """(index, start) of each chunk of `chunk` covering num (the last one drawn whole, cut)."""
  return enumerate(range(0, num, chunk))


def _model_run(workdir: str, *names: str):
  run = load_run(workdir)
  if run.config.model.name not in names:
    raise ConfigError(f"{workdir} holds a {run.config.model.name} run; this source needs a "
                      f"{' or '.join(names)} run")
  return run


def prior_samples(workdir: str, num: int, temperature: float, key, chunk: int,
                  sample_options: dict) -> ImageSet:
  prior_run = load_prior(workdir)
  sampling.check_request(prior_run.model, chunk, None, temperature, **sample_options)
  vq_run = load_tokenizer_of(prior_run)
  draw = sampling.make_sampler(prior_run.experiment, chunk, temperature, **sample_options)
  decode = sampling.code_decoder(vq_run)
  classes = prior_run.model.num_classes
  all_labels = np.arange(num + chunk, dtype=np.int32) % classes if classes else None
  images = []
  for i, start in _chunks(num, chunk):
    labels = None if all_labels is None else jnp.asarray(all_labels[start:start + chunk])
    codes = np.asarray(draw(prior_run.state, jax.random.fold_in(key, i), labels))
    images.append(np.asarray(decode(codes)))
  return ImageSet(f"prior:{workdir}", np.concatenate(images)[:num],
                  None if all_labels is None else all_labels[:num])


def code_frequencies(codes: np.ndarray, num_codes: int) -> np.ndarray:
  """Each position's code frequencies over code grids [N, h, w]: [h, w, K], rows summing to 1."""
  one_hot = codes[..., None] == np.arange(num_codes)
  return one_hot.mean(axis=0)


def marginal_samples(workdir: str, num: int, key, chunk: int) -> ImageSet:
  code_data = codes_lib.load(workdir)
  frequencies = code_frequencies(code_data.train.array, code_data.num_codes)   # [h, w, K]
  vq_run = load_run(workdir, step=code_data.metadata["step"])
  decode = sampling.code_decoder(vq_run)
  log_frequencies = jnp.log(jnp.asarray(frequencies, jnp.float32))
  draw = jax.jit(lambda key: jax.random.categorical(
      key, jnp.broadcast_to(log_frequencies, (chunk,) + log_frequencies.shape)))
  images = [np.asarray(decode(np.asarray(draw(jax.random.fold_in(key, i)))))
            for i, _ in _chunks(num, chunk)]
  return ImageSet(f"marginal:{workdir}", np.concatenate(images)[:num])


def vae_samples(workdir: str, num: int, key, chunk: int) -> ImageSet:
  run = _model_run(workdir, "vae")
  generate = run.jit(lambda model, key: model.generate(key, chunk, None))
  images = [np.asarray(generate(jax.random.fold_in(key, i))) for i, _ in _chunks(num, chunk)]
  return ImageSet(f"vae:{workdir}", np.concatenate(images)[:num])


def ae_samples(workdir: str, num: int, key, chunk: int) -> ImageSet:
  """z ~ N(mean, diag(std^2)) of the training split's latents, decoded."""
  run = _model_run(workdir, "autoencoder")
  data = run.experiment.dataset
  encode = run.jit(lambda model, x: model.encoder(data.preprocess(x, None)))
  latents = np.concatenate([np.asarray(encode(data.train.inputs(np.arange(s, min(s + chunk,
                                                                                 len(data.train))))))
                            for _, s in _chunks(len(data.train), chunk)])
  mean, std = latents.mean(axis=0), latents.std(axis=0)
  decode = run.jit(lambda model, key: jnp.clip(model.decode(
      mean + std * jax.random.normal(key, (chunk,) + mean.shape)), 0.0, 1.0))
  images = [np.asarray(decode(jax.random.fold_in(key, i))) for i, _ in _chunks(num, chunk)]
  return ImageSet(f"ae:{workdir}", np.concatenate(images)[:num])


def reconstructions(workdir: str, num: int, key, chunk: int) -> ImageSet:
  """The model's reconstructions of the first `num` test images (a VAE's from one z ~ q(z|x))."""
  run = _model_run(workdir, "autoencoder", "vae", "vqvae")
  data = run.experiment.dataset
  _check_enough(len(data.test), num, f"the test split of {run.config.dataset}")
  reconstruct = run.jit(lambda model, x, key: model(data.preprocess(x, key), key).reconstruction)
  originals = data.test.inputs(np.arange(num))
  images = [np.asarray(reconstruct(originals[s:s + chunk], jax.random.fold_in(key, i)))
            for i, s in _chunks(num, chunk)]
  return ImageSet(f"reconstructions:{workdir}", np.concatenate(images),
                  data.test.labels(np.arange(num)), originals)


def dataset_split(where: str, num: int, seed: int) -> ImageSet:
  name, _, split = where.rpartition(":")
  if split not in ("train", "test") or not name:
    raise ConfigError(f"--images=dataset:{where}: give dataset:NAME:train or dataset:NAME:test")
  source = getattr(load_dataset(name), split)
  _check_enough(len(source), num, f"the {split} split of {name}")
  indices = (np.arange(num) if split == "test"
             else np.sort(np.random.default_rng(seed).permutation(len(source))[:num]))
  return ImageSet(f"dataset:{where}", source.inputs(indices), source.labels(indices))


def _check_enough(available: int, num: int, what: str) -> None:
  if available < num:
    raise DatasetError(f"{what} has {available} images, fewer than --num_images={num}: give "
                       f"--num_images={available} or fewer (compare FIDs at equal N)")


def load_images(source: str, num: int, *, temperature: float = 1.0, seed: int = 0,
                chunk: int = 500, sample_options: dict | None = None) -> ImageSet:
  """The `num` images a source string names (see the module docstring).

  Args:
    source: e.g. "prior:workdirs/prior", "dataset:fashion_mnist:test".
    num: N, how many images.
    temperature: the prior's softmax temperature (prior: only).
    sample_options: the prior's other sampling options (jaxvq.sampling.SAMPLE_OPTIONS:
      top_k, top_p, guidance, steps, choice_temperature; prior: only).
    seed: the draws' seed (and the training-split subset's).
    chunk: images generated per compiled call.
  """
  kind, where = _parse(source)
  key = jax.random.key(seed)
  sample_options = sampling.given_options(**(sample_options or {}))
  if kind == "prior":
    return prior_samples(where, num, temperature, key, chunk, sample_options)
  if temperature != 1.0 or sample_options:
    raise ConfigError(f"temperature and {sorted(sampling.SAMPLE_OPTIONS)} are a prior's: "
                      f"{source} has none")
  if kind == "marginal":
    return marginal_samples(where, num, key, chunk)
  if kind == "vae":
    return vae_samples(where, num, key, chunk)
  if kind == "ae":
    return ae_samples(where, num, key, chunk)
  if kind == "reconstructions":
    return reconstructions(where, num, key, chunk)
  return dataset_split(where, num, seed)
