"""The quality metrics as plain functions of features and images (NumPy, float64 where it matters).

  frechet_distance   the Fréchet distance of two Gaussians (FID on extractor features)
  fid                the Fréchet distance of two feature sets' Gaussians
  precision_recall   the k-NN manifold precision and recall of Kynkäänniemi et al. 2019
  psnr, ssim         reconstruction fidelity, per image, averaged
  accuracy           the fraction of logits whose argmax is the label
"""
from __future__ import annotations

import dm_pix
import jax
import jax.numpy as jnp
import numpy as np

from jaxvq.ops.vq import squared_distances


def gaussian_moments(features: np.ndarray):
  """The mean [F] and covariance [F, F] (unbiased, float64) of features [N, F]."""
  features = np.asarray(features, np.float64)
  return features.mean(axis=0), np.cov(features, rowvar=False)


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
  """The symmetric square root of a symmetric positive semi-definite matrix."""
  values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
  return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def frechet_distance(mean1, cov1, mean2, cov2) -> float:
  """d^2 = ||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)) (Heusel et al. 2017, "GANs
  Trained by a Two Time-Scale Update Rule Converge to a Local Nash Equilibrium").

  Tr((S1 S2)^(1/2)) is computed stably as the sum of the square roots of the eigenvalues of
  the symmetric PSD matrix S1^(1/2) S2 S1^(1/2) (the same eigenvalues as S1 S2), so no
  complex matrix square root and no regularisation are needed.
  """
  mean1, mean2 = np.asarray(mean1, np.float64), np.asarray(mean2, np.float64)
  cov1, cov2 = np.atleast_2d(cov1).astype(np.float64), np.atleast_2d(cov2).astype(np.float64)
  root1 = _psd_sqrt(cov1)
  middle = root1 @ cov2 @ root1
  eigenvalues = np.linalg.eigvalsh((middle + middle.T) / 2)
  trace_sqrt = np.sqrt(np.clip(eigenvalues, 0.0, None)).sum()
  distance = np.sum((mean1 - mean2) ** 2) + np.trace(cov1) + np.trace(cov2) - 2 * trace_sqrt
  return float(max(distance, 0.0))


def fid(features1: np.ndarray, features2: np.ndarray) -> float:
  """features [N1, F], [N2, F] -> the Fréchet distance of the Gaussians fitted to them.

  The estimate is biased upwards at small N: compare values computed at the same N.
  """
  return frechet_distance(*gaussian_moments(features1), *gaussian_moments(features2))


def _pairwise_distances(a: jax.Array, b: jax.Array) -> jax.Array:
  """Euclidean distances [Na, Nb] of rows a [Na, F] and b [Nb, F] (the quantizer's squared
  distances, rounding below 0 clipped)."""
  return jnp.sqrt(jnp.maximum(squared_distances(a, b), 0.0))


_kth_distance = jax.jit(  # index 0 of each row is the point itself, at distance 0
    lambda a, b, k: -jax.lax.top_k(-_pairwise_distances(a, b), k + 1)[0][:, k],
    static_argnums=2)
_inside_any_ball = jax.jit(
    lambda queries, centers, radii: jnp.any(_pairwise_distances(queries, centers)
                                            <= radii[None, :], axis=1))


def _in_chunks(fn, queries: np.ndarray, *args, chunk: int = 1000) -> np.ndarray:
  return np.concatenate([np.asarray(fn(queries[i:i + chunk], *args))
                         for i in range(0, len(queries), chunk)])


def knn_radii(features: np.ndarray, k: int = 3) -> np.ndarray:
  """Each point's distance to its k-th nearest neighbour in the set, itself excluded: [N]."""
  features = jnp.asarray(features, jnp.float32)
  return _in_chunks(lambda q: _kth_distance(q, features, k), np.asarray(features))


def manifold_coverage(queries: np.ndarray, centers: np.ndarray, radii: np.ndarray) -> float:
  """The fraction of `queries` inside at least one ball (center, radius) of the other set."""
  centers, radii = jnp.asarray(centers, jnp.float32), jnp.asarray(radii, jnp.float32)
  inside = _in_chunks(lambda q: _inside_any_ball(q, centers, radii),
                      np.asarray(queries, np.float32))
  return float(inside.mean())


def precision_recall(real: np.ndarray, generated: np.ndarray, k: int = 3) -> tuple:
  """(precision, recall) of generated features against real ones (Kynkäänniemi et al. 2019,
  "Improved Precision and Recall Metric for Assessing Generative Models").

  Each set's manifold is the union of balls around its points, each of radius the distance
  to the point's k-th nearest neighbour in its own set; precision is the fraction of
  generated points inside the real manifold, recall the fraction of real points inside the
  generated one.
  """
  precision = manifold_coverage(generated, real, knn_radii(real, k))
  recall = manifold_coverage(real, generated, knn_radii(generated, k))
  return precision, recall


def psnr(images: np.ndarray, references: np.ndarray) -> float:
  """The mean over images of 10 log10(1 / MSE), in dB, for [N, H, W, C] images in [0, 1]
  (dm_pix.psnr's per image, whose data range is 1)."""
  per_image = dm_pix.psnr(jnp.asarray(images, jnp.float32), jnp.asarray(references, jnp.float32))
  return float(np.mean(np.asarray(per_image, np.float64)))


SSIM_WINDOW, SSIM_SIGMA, SSIM_K1, SSIM_K2 = 11, 1.5, 0.01, 0.03


def gaussian_window(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA) -> np.ndarray:
  """The normalised 1-D Gaussian window [size], dm_pix.ssim's (for references to check it)."""
  offsets = np.arange(size) - (size - 1) / 2
  window = np.exp(-offsets ** 2 / (2 * sigma ** 2))
  return window / window.sum()


@jax.jit
def ssim_per_image(images: jax.Array, references: jax.Array) -> jax.Array:
  """SSIM of each image [N, H, W, C] in [0, 1] against its reference: [N] (Wang et al. 2004,
  "Image Quality Assessment: From Error Visibility to Structural Similarity").

  Local statistics under an 11x11 Gaussian window (sigma 1.5, `gaussian_window`) over the
  positions where the window fits (no padding), C1 = (0.01 L)^2, C2 = (0.03 L)^2 with
  L = 1; the SSIM map is averaged over positions and channels. dm_pix.ssim computes exactly
  that, with the window applied as two 1-D 'valid' convolutions at full float32 precision,
  and clamps what rounding can push out of range (variances below float32's eps^2, a
  covariance above sqrt(var_x var_y)).
  """
  return dm_pix.ssim(images.astype(jnp.float32), references.astype(jnp.float32), max_val=1.0,
                     filter_size=SSIM_WINDOW, filter_sigma=SSIM_SIGMA, k1=SSIM_K1, k2=SSIM_K2)


def ssim(images: np.ndarray, references: np.ndarray, chunk: int = 1000) -> float:
  """The mean SSIM over images (see `ssim_per_image`)."""
  return float(np.mean(np.concatenate([
      np.asarray(ssim_per_image(images[i:i + chunk], references[i:i + chunk]))
      for i in range(0, len(images), chunk)])))


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
  """The fraction of rows of logits [N, classes] whose argmax is the label [N]."""
  return float(np.mean(np.argmax(logits, axis=-1) == np.asarray(labels)))
