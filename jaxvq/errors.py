"""The mistakes a user can fix. Every jaxvq command reports them in one line, without a traceback."""


class UserError(ValueError):
  """A bad config, dataset, workdir or request: the message says what is wrong and how to fix it.

  `argument` names the function argument at fault when the message starts with it (e.g.
  "num_samples must be at least 1"): the command line then names its flag instead
  ("--num_samples must be ...").
  """

  def __init__(self, message: str = "", argument: str | None = None):
    super().__init__(message)
    self.argument = argument


class ConfigError(UserError):
  """A config value the models or the machine cannot work with."""


class DatasetError(UserError):
  """A dataset that cannot be loaded, with the reason and the fix."""


class RunError(UserError):
  """A workdir that does not hold what was asked of it."""


class TrainingDiverged(RunError):
  """A loss became NaN or Inf; the last good checkpoint is kept."""


class CheckpointDamaged(RunError):
  """A checkpoint that cannot be read, or whose state does not match its checksum."""

  def __init__(self, step: int, directory: str, reason: str):
    super().__init__(f"the checkpoint of step {step} in {directory} is damaged ({reason})")
    self.step, self.directory, self.reason = step, directory, reason


class DiskFull(RunError):
  """A write failed for want of space: what was saved before it is intact."""


class Preempted(Exception):
  """SIGTERM or SIGINT (Ctrl-C) arrived: a checkpoint of the current step was saved."""

  def __init__(self, step: int, workdir: str, signal_name: str = "SIGTERM"):
    super().__init__(f"stopped by {signal_name} at step {step}: saved its checkpoint in "
                     f"{workdir}; rerun the same command to resume")
    self.step, self.signal_name = step, signal_name


class SampleError(UserError):
  """A sampling request the prior cannot serve."""


class BoundError(UserError):
  """A likelihood bound the runs cannot give."""
