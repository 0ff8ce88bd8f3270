"""`python -m jaxvq COMMAND [--flags]` (installed: `jaxvq COMMAND`); see jaxvq/commands."""
import importlib
import sys

from jaxvq.commands import COMMANDS


def main(argv=None) -> None:
  argv = sys.argv if argv is None else argv
  if len(argv) < 2 or argv[1] not in COMMANDS:
    usage = "\n".join(f"  {name:8s} {what}" for name, what in COMMANDS.items())
    print(f"usage: jaxvq COMMAND [--flags]  (--help after a command lists its flags)\n{usage}",
          file=sys.stderr)
    sys.exit(0 if len(argv) > 1 and argv[1] in ("-h", "--help", "help") else 2)
  from jaxvq import cli  # pylint: disable=g-import-not-at-top
  command = importlib.import_module(f"jaxvq.commands.{argv[1]}")
  command.define_flags()
  cli.run(command.main, [f"jaxvq {argv[1]}"] + list(argv[2:]), usage=command.__doc__)


if __name__ == "__main__":
  main()
