"""What stops a run safely: SIGTERM (preemption) or SIGINT (Ctrl-C), and NaN or Inf in the
metrics or parameters."""
from __future__ import annotations

import signal
import threading

import jax
import jax.numpy as jnp

from jaxvq.errors import TrainingDiverged
from jaxvq.train.checkpoint import Checkpointer
from jaxvq.train.experiment import TrainState

_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class SigtermFlag:
  """Notes a SIGTERM (how TPU VMs are preempted) or a SIGINT (Ctrl-C) so that the loop can
  save and stop. A second Ctrl-C stops at once (KeyboardInterrupt), without saving."""

  def __init__(self):
    self.received, self.installed, self.previous = False, False, {}
    # What `Preempted` names; another process's signal also stops this one, as a preemption.
    self.signal_name = "SIGTERM"

  def __enter__(self):
    if threading.current_thread() is threading.main_thread():
      for signum in _STOP_SIGNALS:
        self.previous[signum] = signal.signal(signum, self._handle)
      self.installed = True
    return self

  def _handle(self, signum, frame):
    del frame
    if self.received and signum == signal.SIGINT:
      raise KeyboardInterrupt
    if not self.received:
      self.signal_name = signal.Signals(signum).name
    self.received = True

  def __exit__(self, *exc):
    if self.installed:  # None: a handler not set from Python, i.e. the default
      for signum, previous in self.previous.items():
        signal.signal(signum, signal.SIG_DFL if previous is None else previous)


# A train interval's state, on the device: per metric, its sum over the interval's steps, the
# first step it went NaN or Inf (-1: none) and that value; checked at log, eval and save steps.

@jax.jit
def accumulate(interval, metrics, step):
  """Adds a step's metrics to the interval's sums; notes the first step each went NaN or Inf."""
  newly_bad = jax.tree.map(lambda first, v: (first < 0) & ~jnp.isfinite(v),
                           interval["bad_step"], metrics)
  return {"sum": jax.tree.map(jnp.add, interval["sum"], metrics),
          "bad_step": jax.tree.map(lambda first, bad: jnp.where(bad, step, first),
                                   interval["bad_step"], newly_bad),
          "bad_value": jax.tree.map(lambda old, v, bad: jnp.where(bad, v.astype(jnp.float32), old),
                                    interval["bad_value"], metrics, newly_bad)}


def new_interval(metrics):
  return {"sum": jax.tree.map(lambda m: jnp.zeros(m.shape, m.dtype), metrics),
          "bad_step": jax.tree.map(lambda m: jnp.full(m.shape, -1, jnp.int32), metrics),
          "bad_value": jax.tree.map(lambda m: jnp.zeros(m.shape, jnp.float32), metrics)}


@jax.jit
def all_finite(params) -> jax.Array:
  return jnp.all(jnp.stack([jnp.all(jnp.isfinite(p)) for p in jax.tree.leaves(params)]))


def check_finite(interval, state: TrainState, checkpointer: Checkpointer, workdir: str) -> None:
  """Stops training at a NaN or Inf metric or parameter, keeping the checkpoints saved before it."""
  bad_step = jax.device_get(interval["bad_step"])
  bad = {k: int(s) for k, s in bad_step.items() if s >= 0}
  if bad:
    step = min(bad.values())
    values = jax.device_get(interval["bad_value"])
    what = ", ".join(f"{k} = {float(values[k])}" for k in sorted(bad) if bad[k] == step)
  elif not all_finite(state.params):  # finite losses, but the update overflowed
    step, what = int(state.step), "a parameter became NaN or Inf in its update"
  else:
    return
  checkpointer.wait()
  last = checkpointer.latest_step()
  kept = (f"the last good checkpoint, of step {last}, is kept in {workdir}/checkpoints"
          if last is not None else "no checkpoint was saved before it")
  raise TrainingDiverged(f"training diverged at step {step}: {what}; {kept}. Try a lower "
                         f"--config.learning_rate in a new --workdir")
