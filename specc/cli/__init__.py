"""The command line: a thin shell that parses arguments, calls the API and renders through rich.

`main` is the console script; `run(argv, stdout, stderr)` runs one command with the consoles it is
given and returns its exit code (the tests drive it)."""
from __future__ import annotations

import sys
from typing import Sequence

from rich.console import Console

from specc.cli.commands import COMMANDS
from specc.cli.parser import build, parse
from specc.diagnostics import render
from specc.errors import SpeccError
from specc.threads import limited
from specc.training.world import launched_size


def run(argv: Sequence[str], stdout: Console, stderr: Console) -> int:
    """Run one command; return its exit code (0 ok, 1 a failed run, 2 a usage, spec or data error)."""
    try:
        args = parse(build(stdout, stderr), argv)
    except SystemExit as e:  # argparse has printed usage or help
        return int(e.code or 0)
    if args is None:  # `specc` alone: its help, the commands one per line, has been printed
        return 2
    try:
        with limited(getattr(args, "threads", None)):
            return COMMANDS[args.command](args, stdout, stderr)
    except SpeccError as e:
        render(e, stderr)
        return e.exit_code


def main(argv: Sequence[str] | None = None) -> int:
    # Logs and pipes get 120 columns instead of rich's 80, so tables are not squeezed. The ranks of an
    # MPI launch write as to a log whatever their stdout is (Open MPI gives them a terminal of its own
    # even when mpirun's output goes to a file): no live progress bar, no colour codes.
    terminal = False if launched_size() > 1 else None  # None: rich decides
    stdout = Console(highlight=False, width=None if sys.stdout.isatty() and terminal is None else 120,
                     force_terminal=terminal)
    stderr = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() and terminal is None else 120,
                     force_terminal=terminal)
    try:
        return run(sys.argv[1:] if argv is None else argv, stdout, stderr)
    except KeyboardInterrupt:
        stderr.print("interrupted", style="bold red")
        return 1
    except BrokenPipeError:  # `specc schema | head` closing the pipe early is not an error
        return 0


__all__ = ["main", "run"]
