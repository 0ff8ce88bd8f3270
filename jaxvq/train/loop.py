"""The training loop shared by every model: `train_and_evaluate(config, workdir)`.

Setup, then for each step: the compiled train step, the NaN/Inf guard, a log
row, an evaluation and a checkpoint at their intervals, and a save-and-stop
at SIGTERM or SIGINT. Everything a model does differently sits behind the model's
interface (jaxvq/models/base.py); the loop names no model.
"""
from __future__ import annotations

import os
import time
from typing import Callable, Mapping

import jax
import ml_collections

from jaxvq import config as config_lib
from jaxvq.errors import ConfigError, Preempted, RunError
from jaxvq.registry import model_class
from jaxvq.runtime import distributed
from jaxvq.tokens import codes, provenance
from jaxvq.train import console, guards, steps
from jaxvq.train import workdir as workdir_lib
from jaxvq.train.checkpoint import Checkpointer
from jaxvq.train.evaluate import evaluate, num_eval_examples, write_images
from jaxvq.train.experiment import Experiment, setup
from jaxvq.train.metrics_writer import MetricsWriter
from jaxvq.train.run import load_data, tokenizer_mismatch
from jaxvq.train.workdir import write_config


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str, *,
                       final_evaluations: Mapping[str, Callable[[str], dict]] | None = None
                       ) -> dict:
  """Trains `config` in `workdir`, resuming from its latest checkpoint.

  Args:
    config: a run's config (`jaxvq.get_config(model)`, or a file in configs/).
    workdir: where checkpoints, metrics.jsonl, images and config.json go; rerunning
      with the same config resumes there.
    final_evaluations: split name -> fn(workdir) -> a metrics row, measured on the run
      saved at its last step and written to metrics.jsonl under that split (e.g. the `fid`
      row config.quality_features asks for: jaxvq.quality.final_evaluations(config)).

  Returns:
    The final test metrics, name -> float (for a finished run, its last evaluation's).

  Raises:
    ConfigError or DatasetError for a config or dataset that cannot run; RunError for a
    workdir that cannot be written, holds files jaxvq did not write, holds a run of another
    config (unless config.overwrite), or is in use by another process;
    TrainingDiverged when a train metric or a parameter becomes NaN or Inf; and
    Preempted after saving a checkpoint when SIGTERM or SIGINT arrives (from the start: one
    received while setting up is acted on after the first step).
  """
  final_evaluations = dict(final_evaluations or {})
  if codes.is_codes(config.dataset):  # so that the run is restored from any directory
    config = ml_collections.ConfigDict(config.to_dict())
    config.dataset = codes.absolute(config.dataset)
  with guards.SigtermFlag() as sigterm:
    # Everything that can be refused is checked before the workdir is touched.
    config_lib.check(config)
    if config.quality_features and "fid" not in final_evaluations:
      raise ConfigError("config.quality_features asks for a final `fid` row: pass "
                        "final_evaluations=jaxvq.quality.final_evaluations(config) (the train "
                        "command does)")
    workdir_lib.check_path(workdir)
    workdir_lib.check_dataset(config.dataset, workdir)
    workdir_lib.check_not_foreign(workdir)
    other_codes = _other_codes(config, workdir)
    exp = setup(config, load_data(config))
    with workdir_lib.claimed(exp.config, workdir, other_run=other_codes):
      distributed.barrier("jaxvq: workdir claimed")
      if codes.is_codes(config.dataset) and distributed.is_main_process():
        provenance.write_record(workdir, exp.dataset)
      checkpointer = Checkpointer(os.path.join(workdir, "checkpoints"),
                                  exp.config.keep_checkpoints)
      try:
        return _train_loop(exp, workdir, checkpointer, sigterm, final_evaluations)
      finally:
        checkpointer.close()


def _other_codes(config: ml_collections.ConfigDict, workdir: str) -> str | None:
  """Why a prior's workdir holds a run that learned other codes than config.dataset's now
  (None: it does not); refused before the codes are read, unless config.overwrite."""
  if not codes.is_codes(config.dataset) or not os.path.isdir(workdir):
    return None
  problem = tokenizer_mismatch(workdir, codes.workdir_of(config.dataset))
  if problem and not config.overwrite:
    raise RunError(f"{problem}; or add --config.overwrite=True to delete the prior in "
                   f"{workdir} and train one on the new codes there")
  return problem


def _train_loop(exp: Experiment, workdir: str, checkpointer: Checkpointer, sigterm,
                final_evaluations: dict) -> dict:
  config, state = exp.config, exp.initial_state
  summary = model_class(config.model.name).SUMMARY_METRICS
  writer = MetricsWriter(workdir)
  latest, restored = checkpointer.restore_latest_intact(state)
  state = restored if latest is not None else steps.initialize_from_data(exp, state)
  writer.truncate_after(latest or 0)  # rows logged after the checkpoint are logged again
  write_config(config, workdir)

  train_step, eval_step = steps.make_train_step(exp), steps.make_eval_step(exp)
  start = int(state.step)
  out = console.Console(start, config.num_train_steps)
  if latest is not None:
    out.print(f"resumed from the checkpoint of step {latest} in {workdir}")
  interval, interval_steps, interval_start = None, 0, time.perf_counter()
  test_metrics = {}
  batches = steps.train_batches(exp, start)   # read ahead, in threads or worker processes
  try:
    for step in range(start + 1, config.num_train_steps + 1):
      state, metrics = train_step(state, next(batches))
      interval = guards.accumulate(interval or guards.new_interval(metrics), metrics, step)
      interval_steps += 1
      last = step == config.num_train_steps
      log = step % config.log_every_steps == 0 or last
      evaluate_now = step % config.eval_every_steps == 0 or last
      save = step % config.checkpoint_every_steps == 0 or last
      if jax.process_count() == 1:
        stop = sigterm.received
      else:  # processes may get SIGTERM at different steps: they agree at log/eval/save steps
        stop = (log or evaluate_now or save) and distributed.any_process(sigterm.received)
      if log or evaluate_now or save or stop:
        guards.check_finite(interval, state, checkpointer, workdir)
      if log:
        # Counts ("num_...") are summed over the interval, the rest averaged.
        means = {k: float(v) if k.startswith("num_") else float(v) / interval_steps
                 for k, v in jax.device_get(interval["sum"]).items()}
        elapsed = time.perf_counter() - interval_start
        means["images_per_sec"] = interval_steps * config.batch_size / elapsed
        if batches.skipped_files:   # corrupt_images="skip": the corrupt files met so far
          means["skipped_images"] = len(batches.skipped_files)
        writer.write(step, "train", means)
        out.print(console.train_line(step, config.num_train_steps, means, summary))
        interval, interval_steps = None, 0
        interval_start = time.perf_counter()
      out.advance()
      if stop:  # the grace period is short: save before anything else
        checkpointer.save(step, state)
        checkpointer.wait()
        raise Preempted(step, workdir, sigterm.signal_name)
      if evaluate_now:
        final_step = steps.make_final_metrics_step(exp) if last else None
        test_metrics, first, code_counts = evaluate(exp, state, eval_step, final_step)
        writer.write(step, "test", test_metrics)
        out.print(console.eval_line(step, num_eval_examples(exp), test_metrics, summary))
        write_images(exp, state, step, workdir, first, code_counts, writer)
        interval_start = time.perf_counter()  # evaluation time is not training throughput
      if save:
        checkpointer.save(step, state)
      if last and final_evaluations:   # measured on the run saved just now
        checkpointer.wait()
        for split, measure in final_evaluations.items():
          writer.write(step, split, measure(workdir))
  finally:
    batches.close()
    out.close()
    writer.close()
  if not test_metrics:  # the run was already complete: its last evaluation
    tests = [r for r in writer.read() if r["split"] == "test"]
    test_metrics = ({k: v for k, v in tests[-1].items() if k not in ("step", "split")}
                    if tests else {})
  return test_metrics
