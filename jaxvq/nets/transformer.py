"""A pre-norm transformer (GPT-2 style, as taming-transformers' and LlamaGen's priors): blocks
of x + attention(LN(x)) and x + MLP(LN(x)), causal or bidirectional, with a key/value cache
for decoding one position at a time.

  net = Transformer(dim=256, depth=8, heads=8, rngs=rngs)
  h = net(x, causal=True)                        # [B, T, D] -> [B, T, D]
  cache = net.init_cache(batch=B, length=T)      # per block: keys and values [B, H, T, D/H]
  h_t, cache = net.step(x_t, cache, position=t)  # [B, 1, D]: the same as h[:, t:t+1]
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx


class Attention(nnx.Module):
  """Multi-head self-attention; softmax(q k^T / sqrt(d)) v over the allowed positions."""

  def __init__(self, dim: int, heads: int, *, rngs: nnx.Rngs):
    if dim % heads:
      raise ValueError(f"the width {dim} does not divide among {heads} heads")
    self.heads = heads
    self.qkv = nnx.Linear(dim, 3 * dim, use_bias=False, rngs=rngs)
    # Biases of the queries and values only: a key bias adds q . b to all of a query's scores
    # alike, which the softmax ignores, so its gradient is rounding noise (which Adam would
    # scale up to steps of the learning rate, different on 8 devices and on 1).
    self.qv_bias = nnx.Param(jnp.zeros((2, dim)))
    self.out = nnx.Linear(dim, dim, rngs=rngs)

  def _split(self, x):
    """[B, T, 3D] (x W_qkv) -> q, k, v (with their biases), each [B, H, T, D/H]."""
    b, t, _ = x.shape
    q, k, v = jnp.split(x, 3, axis=-1)
    q, v = q + self.qv_bias[0], v + self.qv_bias[1]
    return [a.reshape(b, t, self.heads, -1).transpose(0, 2, 1, 3) for a in (q, k, v)]

  def _attend(self, q, k, v, allowed):
    """q [B, H, Tq, d], k and v [B, H, Tk, d], allowed [Tq, Tk] bool -> [B, Tq, H * d]."""
    scores = jnp.einsum("bhqd,bhkd->bhqk", q, k) / math.sqrt(q.shape[-1])
    scores = jnp.where(allowed, scores, -jnp.inf)
    out = jnp.einsum("bhqk,bhkd->bhqd", jax.nn.softmax(scores, axis=-1), v)
    b, h, t, d = out.shape
    return out.transpose(0, 2, 1, 3).reshape(b, t, h * d)

  def __call__(self, x: jax.Array, causal: bool) -> jax.Array:
    """[B, T, D] -> [B, T, D]; with `causal`, position t attends to positions <= t only."""
    q, k, v = self._split(self.qkv(x))
    t = x.shape[1]
    allowed = jnp.tril(jnp.ones((t, t), bool)) if causal else jnp.ones((t, t), bool)
    return self.out(self._attend(q, k, v, allowed))

  def step(self, x: jax.Array, cache: tuple, position) -> tuple:
    """One position of a causal pass: x [B, 1, D] at `position`, cache (keys, values) of the
    positions before it, each [B, H, T, D/H] -> (out [B, 1, D], the cache with this one's)."""
    q, k, v = self._split(self.qkv(x))
    keys = jax.lax.dynamic_update_slice_in_dim(cache[0], k, position, axis=2)
    values = jax.lax.dynamic_update_slice_in_dim(cache[1], v, position, axis=2)
    allowed = (jnp.arange(keys.shape[2]) <= position)[None, :]           # [1, T]
    return self.out(self._attend(q, keys, values, allowed)), (keys, values)


class Block(nnx.Module):
  """x + attention(LayerNorm(x)), then x + MLP(LayerNorm(x)), the MLP 4x wide with GELU."""

  def __init__(self, dim: int, heads: int, *, rngs: nnx.Rngs):
    self.norm_attention = nnx.LayerNorm(dim, rngs=rngs)
    self.attention = Attention(dim, heads, rngs=rngs)
    self.norm_mlp = nnx.LayerNorm(dim, rngs=rngs)
    self.mlp_in = nnx.Linear(dim, 4 * dim, rngs=rngs)
    self.mlp_out = nnx.Linear(4 * dim, dim, rngs=rngs)

  def mlp(self, x):
    return self.mlp_out(jax.nn.gelu(self.mlp_in(self.norm_mlp(x))))

  def __call__(self, x, causal: bool):
    x = x + self.attention(self.norm_attention(x), causal)
    return x + self.mlp(x)

  def step(self, x, cache, position):
    out, cache = self.attention.step(self.norm_attention(x), cache, position)
    x = x + out
    return x + self.mlp(x), cache


class Transformer(nnx.Module):
  """`depth` pre-norm blocks of width `dim` and a final LayerNorm."""

  def __init__(self, dim: int, depth: int, heads: int, *, rngs: nnx.Rngs):
    self.dim, self.heads = dim, heads
    self.blocks = nnx.List([Block(dim, heads, rngs=rngs) for _ in range(depth)])
    self.norm = nnx.LayerNorm(dim, rngs=rngs)

  def __call__(self, x: jax.Array, causal: bool) -> jax.Array:
    """[B, T, D] -> [B, T, D]."""
    for block in self.blocks:
      x = block(x, causal)
    return self.norm(x)

  def init_cache(self, batch: int, length: int) -> list:
    """Empty keys and values for `length` positions: per block ([B, H, T, D/H], same)."""
    shape = (batch, self.heads, length, self.dim // self.heads)
    return [(jnp.zeros(shape), jnp.zeros(shape)) for _ in self.blocks]

  def step(self, x: jax.Array, cache: list, position) -> tuple:
    """The causal pass at one position: x [B, 1, D] -> (out [B, 1, D], the updated cache)."""
    new_cache = []
    for block, block_cache in zip(self.blocks, cache):
      x, block_cache = block.step(x, block_cache, position)
      new_cache.append(block_cache)
    return self.norm(x), new_cache
