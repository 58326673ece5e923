"""What the commands share in writing their results: a spinner while long work runs, exact JSON on
stdout, and a file written or a usage error that says why not."""
from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from specc.errors import Diagnostic, UsageError


@contextmanager
def working(console: Console, what: str) -> Iterator[None]:
    """A spinner with the time elapsed while long work runs, on a terminal only (a log gets nothing extra)."""
    if not console.is_terminal:
        yield
        return
    with Progress(SpinnerColumn(), TextColumn(what), TextColumn("elapsed"), TimeElapsedColumn(), console=console,
                  transient=True):
        yield


def write_json(console: Console, doc) -> None:
    # Written as is, not through rich: the output is for programs and must be exact JSON.
    console.file.write(json.dumps(doc, indent=2) + "\n")
    console.file.flush()


def write_text(out: Path, text: str) -> None:
    """Write a file the command made, or say why it cannot be written."""
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as e:
        raise UsageError([Diagnostic(f"cannot write '{out}': {e.strerror or e}", None, "unwritable")]) from None
