"""Trains a jaxvq model: python train.py --config=configs/NAME.py --workdir=DIR [--config.key=value ...]

The same as `python -m jaxvq train`: rerunning it resumes from the latest
intact checkpoint in DIR; SIGTERM or Ctrl-C saves the current step and exits; a workdir
holding a run of another config is refused unless --config.overwrite=True.
"""
import sys

from jaxvq.__main__ import main

if __name__ == "__main__":
  main([sys.argv[0], "train"] + sys.argv[1:])
