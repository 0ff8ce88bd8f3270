"""What every jaxvq command does first, and how it reports a user's mistake."""
import sys

from absl import flags, logging

from jaxvq.datasets import DatasetError
from jaxvq.trainer import RunError

# Mistakes a user can fix: reported in one line, without a traceback.
USER_ERRORS = (DatasetError, RunError)


def quiet_logging() -> None:
  """Orbax logs every checkpoint operation at INFO: show warnings only, unless --verbosity is given."""
  if not flags.FLAGS["verbosity"].present:
    logging.set_verbosity(logging.WARNING)


def exit_with(error: Exception) -> None:
  sys.exit(f"error: {error}")
