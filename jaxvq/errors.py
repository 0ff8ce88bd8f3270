"""The mistakes a user can fix. Every jaxvq command reports them in one line, without a traceback."""


class UserError(ValueError):
  """A bad config, dataset, workdir or request: the message says what is wrong and how to fix it."""


class ConfigError(UserError):
  """A config value the models or the machine cannot work with."""


class DatasetError(UserError):
  """A dataset that cannot be loaded, with the reason and the fix."""


class RunError(UserError):
  """A workdir that does not hold what was asked of it."""


class TrainingDiverged(RunError):
  """A loss became NaN or Inf; the last good checkpoint is kept."""


class Preempted(Exception):
  """SIGTERM arrived: a checkpoint of the current step was saved."""

  def __init__(self, step: int, workdir: str):
    super().__init__(f"stopped by SIGTERM at step {step}: saved its checkpoint in {workdir}; "
                     f"rerun the same command to resume")
    self.step = step
