"""What many test modules share: the repository's paths, a console that records what it prints,
and the command line run in-process (conftest.py offers them as fixtures too)."""
from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from specc import cli

ROOT = Path(__file__).resolve().parent.parent
MODELS = sorted(ROOT.glob("models/*.net"))  # every trainable model (computational graphs are in models/graphs)


def new_console(width: int = 100) -> Console:
    """A plain console (no colour, no terminal) whose output is `console.file.getvalue()`."""
    return Console(file=io.StringIO(), width=width, color_system=None, force_terminal=False, highlight=False)


@dataclass(frozen=True)
class CliResult:
    code: int
    out: str
    err: str


def run_cli(*argv: object, width: int = 100) -> CliResult:
    """`specc ARGV...` in this process: its exit code, stdout and stderr."""
    out, err = new_console(width), new_console(width)
    code = cli.run([str(a) for a in argv], out, err)
    return CliResult(code, out.file.getvalue(), err.file.getvalue())  # type: ignore[attr-defined]
