"""The math of perceptual and adversarial training (VQGAN's losses), as pure functions.

  feature_distance   LPIPS's distance with unit weights: per layer, channels unit-normalized,
                     squared difference, spatial mean, summed over layers (Zhang et al. 2018)
  hinge / non-saturating discriminator and generator losses (Esser et al. 2021; Goodfellow
                     et al. 2014)
  adaptive_weight    VQGAN's balance of the reconstruction and adversarial gradients at the
                     decoder's last layer (Esser et al. 2021, eq. 7)
  lecam_penalty      LeCam regularisation of the discriminator (Tseng et al. 2021, eq. 3)
  r1_penalty         the gradient penalty on real images (Mescheder et al. 2018, eq. 9)
"""
from __future__ import annotations

from typing import Callable, Sequence

import jax
import jax.numpy as jnp

DISC_LOSSES = ("hinge", "non_saturating")
LECAM_DECAY = 0.99   # the EMA of the discriminator's outputs (Tseng et al. 2021, section 3.1)


def unit_normalize(features: jax.Array, eps: float = 1e-10) -> jax.Array:
  """Each position's channel vector (the last axis) divided by its norm (LPIPS's eq. 1)."""
  return features / (jnp.sqrt(jnp.sum(features ** 2, axis=-1, keepdims=True)) + eps)


def feature_distance(features_a: Sequence[jax.Array], features_b: Sequence[jax.Array]
                     ) -> jax.Array:
  """LPIPS's distance with every channel weighted 1 (Zhang et al. 2018, eq. 1, w_l = 1):
  d = sum_l mean_{h,w} ||n(a_l)_{hw} - n(b_l)_{hw}||^2, n the unit normalisation over channels.

  Args:
    features_a, features_b: one [B, ..., C_l] array per layer (a feature map [B, H, W, C] or a
      feature vector [B, C]) of each batch of images.

  Returns:
    [B] the distance of each pair of images.
  """
  total = 0.0
  for a, b in zip(features_a, features_b):
    squared = jnp.sum((unit_normalize(a) - unit_normalize(b)) ** 2, axis=-1)
    total = total + jnp.mean(squared.reshape(squared.shape[0], -1), axis=1)
  return total


def discriminator_loss(kind: str, logits_real: jax.Array, logits_fake: jax.Array) -> jax.Array:
  """The discriminator's loss on its logits (any shape, averaged): hinge, as taming's
  hinge_d_loss, 0.5 (E[relu(1 - D(x))] + E[relu(1 + D(x_hat))]), or non-saturating (the
  logistic loss), 0.5 (E[softplus(-D(x))] + E[softplus(D(x_hat))])."""
  if kind == "hinge":
    return 0.5 * (jnp.mean(jax.nn.relu(1.0 - logits_real)) +
                  jnp.mean(jax.nn.relu(1.0 + logits_fake)))
  if kind == "non_saturating":
    return 0.5 * (jnp.mean(jax.nn.softplus(-logits_real)) +
                  jnp.mean(jax.nn.softplus(logits_fake)))
  raise ValueError(f"unknown discriminator loss {kind!r}: use one of {DISC_LOSSES}")


def generator_loss(kind: str, logits_fake: jax.Array) -> jax.Array:
  """The generator's (here the decoder's) adversarial loss: hinge, as taming's, -E[D(x_hat)];
  non-saturating, E[softplus(-D(x_hat))] (Goodfellow et al. 2014, section 3)."""
  if kind == "hinge":
    return -jnp.mean(logits_fake)
  if kind == "non_saturating":
    return jnp.mean(jax.nn.softplus(-logits_fake))
  raise ValueError(f"unknown discriminator loss {kind!r}: use one of {DISC_LOSSES}")


def adaptive_weight(grad_reconstruction, grad_generator, maximum: float = 1e4) -> jax.Array:
  """lambda = ||grad_W L_rec|| / (||grad_W L_G|| + 1e-4), clamped to [0, maximum], without a
  gradient of its own (Esser et al. 2021, eq. 7; taming's calculate_adaptive_weight), where
  the gradients are those of the two losses with respect to the decoder's last layer W.

  Args:
    grad_reconstruction, grad_generator: pytrees of the same structure (e.g. W's gradient).
  """
  norm = lambda tree: jnp.sqrt(sum(jnp.sum(g ** 2) for g in jax.tree.leaves(tree)))
  weight = norm(grad_reconstruction) / (norm(grad_generator) + 1e-4)
  return jax.lax.stop_gradient(jnp.clip(weight, 0.0, maximum))


def lecam_penalty(logits_real: jax.Array, logits_fake: jax.Array, ema_real: jax.Array,
                  ema_fake: jax.Array) -> jax.Array:
  """R_LC = E[(D(x) - alpha_F)^2] + E[(D(x_hat) - alpha_R)^2] (Tseng et al. 2021, eq. 3): the
  discriminator's outputs on real images pulled toward the EMA of its outputs on fakes
  (alpha_F) and the other way round."""
  return (jnp.mean((logits_real - ema_fake) ** 2) +
          jnp.mean((logits_fake - ema_real) ** 2))


def ema(average: jax.Array, value: jax.Array, decay: float = LECAM_DECAY) -> jax.Array:
  return decay * average + (1.0 - decay) * value


def r1_penalty(discriminator: Callable[[jax.Array], jax.Array], x: jax.Array) -> jax.Array:
  """R1 = E_x ||grad_x sum D(x)||^2 over real images (Mescheder et al. 2018, eq. 9, without
  its gamma / 2), the sum over D's patch logits of each image."""
  grads = jax.grad(lambda images: jnp.sum(discriminator(images)))(x)
  return jnp.mean(jnp.sum(grads.reshape(grads.shape[0], -1) ** 2, axis=1))
