"""What every jaxvq command does first."""
from absl import flags, logging


def quiet_logging() -> None:
  """Orbax logs every checkpoint operation at INFO: show warnings only, unless --verbosity is given."""
  if not flags.FLAGS["verbosity"].present:
    logging.set_verbosity(logging.WARNING)
