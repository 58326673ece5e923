"""The command line's parser: the `specc` program, its help layout, and parsing argv (a mistyped command gets
"did you mean"); the commands themselves are in specc.cli.flags."""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

from rich.console import Console

from specc import __version__
from specc.cli.flags import add_commands
from specc.suggest import did_you_mean

# Help is formatted to the console's width, but never wider than this (long lines are hard to read).
HELP_WIDTH = 100


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions and examples as written; every flag's help ends with its default, unless the
    help says it already (a default of None or False is described in words, or not at all)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        help = action.help or ""
        default = action.default
        if (action.option_strings and "default" not in help and default is not None
                and not isinstance(default, bool) and default is not argparse.SUPPRESS):
            help += " (default: %(default)s)"
        return help

    def add_argument(self, action: argparse.Action) -> None:
        super().add_argument(action)
        # argparse measures the command names one indent short: `gradcheck` would push its line down
        if isinstance(action, argparse._SubParsersAction):
            longest = max((len(name) for name in action.choices), default=0)
            self._action_max_length = max(self._action_max_length, longest + self._current_indent + 4)


def build(stdout: Console, stderr: Console) -> argparse.ArgumentParser:
    class Parser(argparse.ArgumentParser):
        """Usage, help and usage errors go to the consoles run() was given."""

        def _print_message(self, message: str, file=None) -> None:
            if message:
                console = stderr if file is None or file is sys.stderr else stdout
                console.file.write(message)
                console.file.flush()

    width = min(stdout.width, HELP_WIDTH)

    def formatter(prog: str) -> argparse.HelpFormatter:
        return _Formatter(prog, width=width, max_help_position=28)

    p = Parser(prog="specc", formatter_class=formatter,
               description="Compile, check, train and look at neural networks written as .net layer pipelines.",
               epilog="examples:\n  specc check models/two_layer_net.net\n"
                      "  specc train models/two_layer_net.net --epochs 3\n\n"
                      "`specc COMMAND --help` describes a command's flags.")
    p.add_argument("--version", action="version", version=f"specc {__version__}")
    sub = p.add_subparsers(title="commands", dest="command", metavar="COMMAND")

    def command(name: str, help: str, *examples: str) -> argparse.ArgumentParser:
        epilog = "example" + "s" * (len(examples) > 1) + ":\n" + "\n".join(f"  {e}" for e in examples)
        return sub.add_parser(name, help=help, description=help[0].upper() + help[1:] + ".", epilog=epilog,
                              formatter_class=formatter)

    add_commands(command)
    return p


def commands(parser: argparse.ArgumentParser) -> list[str]:
    """The names of the parser's commands, in the order of its help."""
    for action in parser._subparsers._group_actions if parser._subparsers else []:
        if isinstance(action, argparse._SubParsersAction):
            return list(action.choices)
    return []


def parse(parser: argparse.ArgumentParser, argv: Sequence[str]) -> argparse.Namespace | None:
    """The parsed arguments, or None when there is no command (the parser's help is printed on stderr then).
    A mistyped command gets the closest names (argparse would list them all)."""
    first = next((a for a in argv if not a.startswith("-")), None)
    names = commands(parser)
    if first is not None and first not in names and (not argv or argv[0] == first):
        hint = did_you_mean(first, names)
        parser.error(f"unknown command '{first}'" + (f"; {hint}" if hint else "")
                     + "\n  (`specc --help` lists the commands)")
    args = parser.parse_args(list(argv))
    if args.command is None:  # a usage error: the help goes where usage errors go
        parser.print_help(sys.stderr)
        return None
    return args

