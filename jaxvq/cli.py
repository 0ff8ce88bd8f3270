"""What every jaxvq command shares: quiet logging, and a user's mistakes reported in one line.

  cli.run(main, argv)   instead of app.run(main)

A bad flag, an unknown or mistyped config key, a missing config file, or any
`jaxvq.errors.UserError` prints `error: <what is wrong and how to fix it>`
and exits with status 2 (1 for a run that diverged); a full disk is reported
the same way. A run stopped by SIGTERM (preemption) or Ctrl-C (SIGINT) saves
its checkpoint, says so in one line and exits with 143 or 130, as a shell
reports those signals; `--verbose` shows the traceback instead.
"""
from __future__ import annotations

import logging as std_logging
import os
import sys
import warnings

from absl import app, flags, logging

from jaxvq import config as config_lib
from jaxvq import errors
from jaxvq.runtime import files

FLAGS = flags.FLAGS
flags.DEFINE_bool("verbose", False, "Show the traceback of an error instead of one line.")

USAGE_ERROR, DIVERGED, PREEMPTED, INTERRUPTED = 2, 1, 143, 130


def quiet_logging() -> None:
  """Orbax logs every checkpoint operation at INFO: show warnings only, unless --verbosity is given."""
  if not flags.FLAGS["verbosity"].present:
    logging.set_verbosity(logging.WARNING)


class _DiskFullEchoes(std_logging.Filter):
  """Drops the log records in which Orbax's threads repeat a full disk's error with its
  traceback: the command reports it in one line."""

  def filter(self, record: std_logging.LogRecord) -> bool:
    return not (record.exc_info and files.disk_full_cause(record.exc_info[1]) is not None)


def _hide_library_echoes() -> None:
  """Keeps the echoes of an error that is reported in one line off stderr."""
  logging.get_absl_handler().addFilter(_DiskFullEchoes())
  previous = sys.unraisablehook

  def unraisable(info):
    # TensorStore calls back into an event loop that Orbax closed after a failed save.
    if not (isinstance(info.exc_value, RuntimeError) and
            str(info.exc_value) == "Event loop is closed"):
      previous(info)

  sys.unraisablehook = unraisable
  # After a failed save, Orbax's unfinished writes are collected unawaited at exit.
  warnings.filterwarnings("ignore", message=r"coroutine .* was never awaited",
                          category=RuntimeWarning)


def exit_with(error: Exception, status: int = USAGE_ERROR) -> None:
  message = " ".join(str(error).split())
  argument = getattr(error, "argument", None)
  if argument and argument in FLAGS and message.startswith(argument):
    message = "--" + message   # the library names its argument, the command its flag
  print(f"error: {message}", file=sys.stderr)
  sys.exit(status)


def run(main, argv=None, usage: str | None = None) -> None:
  """app.run(main, argv), reporting user errors in one line (see the module docstring);
  `usage` is what --help prints above the flags."""

  def guarded_main(argv):
    if len(argv) > 1:
      exit_with(errors.UserError(f"unexpected arguments: {' '.join(argv[1:])} "
                                 f"(flags are written --name=value)"))
    quiet_logging()
    if not FLAGS.verbose:
      _hide_library_echoes()
    try:
      main(argv)
    except errors.Preempted as e:
      print(e, file=sys.stderr)
      sys.exit(INTERRUPTED if e.signal_name == "SIGINT" else PREEMPTED)
    except KeyboardInterrupt:  # Ctrl-C outside training, or a second one in it
      if FLAGS.verbose:
        raise
      print("stopped by Ctrl-C (a run's checkpoints saved before it are intact)",
            file=sys.stderr)
      sys.exit(INTERRUPTED)
    except errors.UserError as e:
      if FLAGS.verbose:
        raise
      exit_with(e, DIVERGED if isinstance(e, errors.TrainingDiverged) else USAGE_ERROR)
    except Exception as e:  # pylint: disable=broad-except
      disk_full = None if FLAGS.verbose else files.as_disk_full(e, "a file")
      if disk_full is None:
        raise
      exit_with(disk_full)

  if usage:
    sys.modules["__main__"].__doc__ = usage
  app.run(guarded_main, argv=argv, flags_parser=_parse_flags)


def _parse_flags(argv):
  try:
    rest = FLAGS(argv)
    if "config" in FLAGS and FLAGS.config is not None:
      # A config file that failed to load only raises when first used: use it now.
      FLAGS.config.keys()
    return rest
  except Exception as e:  # pylint: disable=broad-except
    if any(_is_verbose(a) for a in argv):
      raise
    exit_with(errors.ConfigError(_describe_flag_error(e, argv)))


def _is_verbose(arg: str) -> bool:
  return arg in ("--verbose", "-verbose") or arg.lower() in ("--verbose=true", "--verbose=1")


def _describe_flag_error(error: Exception, argv) -> str:
  """What a command line's flag or config error means, for a user."""
  config_file = next((a.split("=", 1)[1] for a in argv if a.startswith("--config=")), None)
  if config_file is not None:
    path = config_file.split(":", 1)[0]
    if not os.path.isfile(path):
      return f"config file {path!r} does not exist (the configs are in configs/)"
    try:
      config = config_lib.load_file(config_file)
    except Exception:  # pylint: disable=broad-except
      config = None
    for arg in argv:
      if arg.startswith("--config.") and config is not None:
        key = arg[len("--config."):].split("=", 1)[0]
        if not _has_key(config, key):
          return (f"{arg}: the config has no key {key!r} (see {path}; the shared keys are in "
                  f"jaxvq/config/base.py, each model's in its module in jaxvq/models)")
  if isinstance(error, flags.Error):
    return str(error).removeprefix("flag ")
  return f"{type(error).__name__}: {error}"


def _has_key(config, dotted: str) -> bool:
  node = config
  for part in dotted.split("."):
    try:
      node = node[part]
    except (KeyError, TypeError, AttributeError):
      return False
  return True
