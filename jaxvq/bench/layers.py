"""Each layer of a model's forward pass, timed forward and forward + backward."""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from jaxvq.bench.step import StepTimer
from jaxvq.bench.timing import flops_of, median_seconds
from jaxvq.nets.layers import PaddedConv
from jaxvq.nets.layers import Conv, Upsample2x
from jaxvq.runtime import xla_options


LEAF_TYPES = (Conv, nnx.Linear, Upsample2x, PaddedConv)


def record_layer_inputs(model, x, key, labels):
  """[(path, module, input)] for each conv/linear/upsampling layer, in the order a forward pass calls them."""
  paths = {id(node): "/".join(map(str, path)) for path, node in nnx.iter_graph(model)}
  calls, originals = [], {}
  for cls in LEAF_TYPES:
    originals[cls] = cls.__dict__.get("__call__")   # None: inherited

    def recording(self, inputs, *args, _call=cls.__call__, **kwargs):
      calls.append((paths.get(id(self), "?"), self, inputs))
      return _call(self, inputs, *args, **kwargs)

    cls.__call__ = recording
  try:
    model(x, key, labels)
  finally:
    for cls, call in originals.items():
      if call is None:
        del cls.__call__
      else:
        cls.__call__ = call
  return calls


def layer_profile(timer: StepTimer, steps: int) -> list:
  """Per layer: ms of its forward pass, and of forward + backward (parameter and input gradients)."""
  exp, state = timer.exp, timer.state
  inputs, labels = timer.batch
  x = exp.dataset.preprocess(inputs, jax.random.key(0))
  model = exp.model(state)
  rows = []
  for n, (path, module, layer_input) in enumerate(record_layer_inputs(model, x,
                                                                      jax.random.key(1), labels)):
    graphdef, params, rest = nnx.split(module, nnx.Param, ...)
    apply = lambda p, v, g=graphdef, r=rest: nnx.merge(g, p, r)(v)
    forward = xla_options.jit(apply, exp.mesh).lower(params, layer_input).compile()
    # The first layer reads the images: no input gradient, as in the train step.
    argnums = (0,) if n == 0 else (0, 1)
    grad = jax.grad(lambda p, v, f=apply: jnp.sum(f(p, v).astype(jnp.float32)), argnums=argnums)
    backward = xla_options.jit(grad, exp.mesh).lower(params, layer_input).compile()
    forward_s = median_seconds(lambda f=forward: f(params, layer_input), steps)
    both_s = median_seconds(lambda f=backward: f(params, layer_input), steps)
    rows.append({"layer": path, "type": type(module).__name__,
                 "input": list(layer_input.shape), "forward_ms": round(forward_s * 1e3, 3),
                 "forward_backward_ms": round(both_s * 1e3, 3),
                 "gflop_forward_backward": round(flops_of(backward) / 1e9, 4)})
  return rows
