"""A tokenizer and its priors: the one home of the link between them.

  tokenizer.py   the Tokenizer interface (encode_to_indices, decode_from_indices, grid, K)
  codes.py       a tokenizer run's code grids on disk (TOKENIZER_DIR/codes/), checked when
                 read, and the dataset a prior trains on (`codes:TOKENIZER_DIR`)
  provenance.py  which tokenizer run and checkpoint a prior's codes came from: recorded in
                 PRIOR_DIR/tokenizer.json, checked at every later use
  runs.py        encoding a trained tokenizer run's codes (`jaxvq encode`), and loading the
                 tokenizer run a prior learned (checked); it loads trained runs, so it sits
                 above jaxvq.train and is imported as jaxvq.tokens.runs
"""
from jaxvq.tokens.codes import CODES_PREFIX, CodeDataset
from jaxvq.tokens.tokenizer import Tokenizer

__all__ = ["CODES_PREFIX", "CodeDataset", "Tokenizer"]
