"""VQGAN's training losses for a tokenizer's decoder (Esser et al. 2021, "Taming Transformers
for High-Resolution Image Synthesis", section 3.1): a perceptual loss
(jaxvq/models/perceptual.py) and a PatchGAN discriminator (jaxvq/nets/discriminator.py)
trained against the decoder, with the adaptive weight that balances the two.

Generator and discriminator are trained by one optimizer step on one loss, from one forward
pass (simultaneous updates):

  loss = L_rec + q_loss + [step >= disc_start_step] (lambda L_G + L_D)
  L_rec = mean_b(reconstruction_b + perceptual_weight * perceptual_b)
  L_G   = generator_loss(D_sg(x_hat)),   the discriminator's parameters held (stop_gradient)
  L_D   = discriminator_loss(D(x), D(sg(x_hat))) + lecam_weight R_LC + r1_weight / 2 R1
  lambda = adversarial_weight x ||grad_W L_rec|| / (||grad_W L_G|| + 1e-4)  (adaptive_weight;
           W the decoder's last kernel) or adversarial_weight alone

so the gradient of `loss` with respect to the discriminator's parameters is L_D's and with
respect to the encoder, decoder and codebook L_rec + q_loss + lambda L_G's. The
discriminator's parameters are the model's (`state.params`: one Adam, checkpointed,
replicated over the mesh and guarded for NaN with the rest); the step counter that gates it
and LeCam's averages are model state.
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
from flax import nnx

from jaxvq.nets.discriminator import PatchDiscriminator
from jaxvq.ops import adversarial as ops
from jaxvq.schema import Field

PERCEPTUAL_FIELDS = {
    "perceptual_weight": Field(0.0, "weight of the perceptual loss in the reconstruction term "
                               "(0: off): LPIPS's distance in a fixed network's features",
                               minimum=0.0),
    "perceptual_network": Field("random", "random (a seeded random-weight CNN), features:DIR "
                                "(the classifier `jaxvq features` trained in DIR), lpips "
                                "(lpips-nnx, pip install 'jaxvq[lpips]'), or a name registered "
                                "with jaxvq.models.perceptual.register"),
    "perceptual_widths": Field((32, 64, 128), "the random network's blocks: two 3x3 convs "
                               "of each width, 2x2 average pooling between blocks", minimum=1),
    "perceptual_seed": Field(0, "the random network's seed", minimum=0),
}

ADVERSARIAL_FIELDS = {
    "adversarial_weight": Field(0.0, "weight of the decoder's adversarial loss (0: no "
                                "discriminator), times the adaptive weight when that is on",
                                minimum=0.0),
    "disc_start_step": Field(0, "the training step (0-based) from which the discriminator "
                             "trains and the adversarial loss acts", minimum=0),
    "disc_loss": Field("hinge", "hinge (taming's) or non_saturating (logistic)",
                       choices=ops.DISC_LOSSES),
    "disc_layers": Field(3, "stride-2 layers of the PatchGAN discriminator", minimum=1),
    "disc_hidden": Field(64, "channels of its first layer (x min(2^n, 8) after)", minimum=1),
    "adaptive_weight": Field(True, "scale the adversarial loss by ||grad L_rec|| / ||grad L_G|| "
                             "at the decoder's last layer (VQGAN's eq. 7)"),
    "lecam_weight": Field(0.0, "weight of LeCam regularisation of the discriminator (0: off)",
                          minimum=0.0),
    "r1_weight": Field(0.0, "gamma of the R1 gradient penalty on real images (0: off)",
                       minimum=0.0),
}


class StepCount(nnx.Variable):
  """The number of training steps taken (model state: it gates the discriminator)."""


class LeCamAverage(nnx.Variable):
  """The EMA of the discriminator's mean logit on real or on reconstructed images."""


def stopped(module: nnx.Module) -> nnx.Module:
  """A copy of `module` whose variables carry no gradient (jax.lax.stop_gradient)."""
  graphdef, state = nnx.split(module)
  return nnx.merge(graphdef, jax.lax.stop_gradient(state))


def value_and_gradient_of(fn: Callable, x: jax.Array):
  """(fn(x), its gradient at x, aux) computed once, without a gradient of their own;
  fn(x) -> (scalar, aux)."""
  (value, aux), grad = jax.value_and_grad(fn, has_aux=True)(jax.lax.stop_gradient(x))
  return jax.lax.stop_gradient((value, grad, aux))


def linearized(value: jax.Array, grad: jax.Array, x: jax.Array) -> jax.Array:
  """value + <grad, x - sg(x)>: equal to `value`, with gradient grad . dx/dtheta: a loss whose
  value and gradient at x were computed once (`value_and_gradient_of`) made part of the
  differentiated loss without a second backward pass through its network."""
  return value + jnp.sum(grad * (x - jax.lax.stop_gradient(x)))


class Adversarial(nnx.Module):
  """The PatchGAN discriminator with what it needs between steps, and VQGAN's loss terms."""

  def __init__(self, cfg, image_shape, *, dtype=jnp.float32, rngs: nnx.Rngs):
    self.discriminator = PatchDiscriminator(image_shape, cfg.disc_hidden, cfg.disc_layers,
                                            dtype=dtype, rngs=rngs)
    self.weight, self.start_step = cfg.adversarial_weight, cfg.disc_start_step
    self.kind, self.adaptive = cfg.disc_loss, cfg.adaptive_weight
    self.lecam_weight, self.r1_weight = cfg.lecam_weight, cfg.r1_weight
    self.steps = StepCount(jnp.zeros((), jnp.int32))
    if self.lecam_weight:
      self.lecam_real = LeCamAverage(jnp.zeros((), jnp.float32))
      self.lecam_fake = LeCamAverage(jnp.zeros((), jnp.float32))

  def active(self) -> jax.Array:
    """1.0 from step disc_start_step on, else 0.0."""
    return (self.steps[...] >= self.start_step).astype(jnp.float32)

  def discriminator_terms(self, x: jax.Array, x_hat: jax.Array) -> tuple:
    """(L_D, metrics) on real images x and reconstructions x_hat (not differentiated)."""
    logits = self.discriminator(jnp.concatenate([x, jax.lax.stop_gradient(x_hat)]))
    real, fake = logits[:x.shape[0]], logits[x.shape[0]:]
    loss = ops.discriminator_loss(self.kind, real, fake)
    metrics = {"d_loss": loss, "logits_real": jnp.mean(real), "logits_fake": jnp.mean(fake)}
    if self.lecam_weight:
      metrics["lecam_penalty"] = ops.lecam_penalty(real, fake, self.lecam_real[...],
                                                   self.lecam_fake[...])
      loss = loss + self.lecam_weight * metrics["lecam_penalty"]
    if self.r1_weight:
      metrics["r1_penalty"] = ops.r1_penalty(self.discriminator, x)
      loss = loss + 0.5 * self.r1_weight * metrics["r1_penalty"]
    return loss, metrics

  def generator_loss(self, x_hat: jax.Array) -> tuple:
    """(L_G, its gradient with respect to x_hat, None), the discriminator held."""
    held = stopped(self.discriminator)
    return value_and_gradient_of(
        lambda images: (ops.generator_loss(self.kind, held(images)), None), x_hat)

  def loss(self, x: jax.Array, x_hat: jax.Array, grad_reconstruction: jax.Array,
           last_layer_pullback: Callable) -> tuple:
    """([step >= start] (lambda L_G + L_D), metrics).

    Args:
      x, x_hat: images and their reconstructions [B, H, W, C].
      grad_reconstruction: the gradient of L_rec with respect to x_hat (the adaptive weight's
        numerator; unused without it).
      last_layer_pullback: g -> the gradient with respect to the decoder's last kernel of a
        loss whose gradient with respect to x_hat is g.
    """
    g_loss, g_grad, _ = self.generator_loss(x_hat)
    weight = jnp.float32(self.weight)
    if self.adaptive:
      adaptive = ops.adaptive_weight(last_layer_pullback(grad_reconstruction),
                                     last_layer_pullback(g_grad))
      weight = weight * adaptive
    d_loss, metrics = self.discriminator_terms(x, x_hat)
    active = self.active()
    metrics.update(g_loss=g_loss, adversarial_weight=weight, disc_active=active)
    return active * (weight * linearized(g_loss, g_grad, x_hat) + d_loss), metrics

  def update_after_step(self, metrics: dict, step: jax.Array) -> None:
    """Counts the step; moves LeCam's averages toward this batch's mean logits."""
    if self.lecam_weight:
      active = self.active() > 0
      for average, name in ((self.lecam_real, "logits_real"), (self.lecam_fake, "logits_fake")):
        average[...] = jnp.where(active, ops.ema(average[...], metrics[name]), average[...])
    self.steps[...] = (step + 1).astype(jnp.int32)
