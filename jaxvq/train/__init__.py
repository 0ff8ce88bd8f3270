"""Training: one loop for every model, with exact resume, preemption and divergence guards.

  experiment.py  config -> data, mesh, model, optimizer, initial state (`setup`); TrainState
  steps.py       the compiled train, evaluation and final-evaluation steps
  evaluate.py    test metrics over the test split; the image grids
  loop.py        `train_and_evaluate(config, workdir)`
  guards.py      SIGTERM and SIGINT, and NaN/Inf in metrics or parameters
  workdir.py     whose workdir it is: its record, lock, config.json, and which config may resume
  checkpoint.py  Orbax checkpoints of the train state, each with its checksum
  metrics_writer.py  metrics.jsonl and TensorBoard event files
  console.py     the lines printed while training
  run.py         a trained run loaded from its workdir (`load_run`), and the data a run reads
"""
from jaxvq.train.loop import train_and_evaluate
from jaxvq.train.run import Run, load_run

__all__ = ["train_and_evaluate", "load_run", "Run"]
