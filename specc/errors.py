"""The one error hierarchy: every mistake a user can make is a SpeccError carrying diagnostics."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable, Iterable, Literal

from specc.source import Source, Span

IRPath = tuple  # a path into the IR document: ("layers", 2, "args", "kernel")
Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Label:
    """A secondary place in the same file, with a short note shown under it."""

    span: Span | None
    message: str
    path: IRPath = ()


@dataclass(frozen=True)
class Diagnostic:
    """One finding: what is wrong (an error) or likely unintended (a warning), where, and how to fix it.

    An error stops the command; a warning is reported and the command goes on. Every stage (and a
    linter) reports both kinds the same way, as diagnostics; the API raises only for errors.
    """

    message: str
    span: Span | None = None
    code: str = "error"
    label: str = ""
    hint: str | None = None
    notes: tuple[Label, ...] = field(default=())
    path: IRPath = ()  # stages after lowering name IR paths; the API turns them into spans
    severity: Severity = "error"

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def located(self, locate: Callable[[IRPath], Span | None]) -> "Diagnostic":
        """This diagnostic with its spans filled in from IR paths."""
        span = self.span if self.span is not None or not self.path else locate(self.path)
        notes = tuple(n if n.span is not None else Label(locate(n.path), n.message, n.path)
                      for n in self.notes)
        return replace(self, span=span, notes=notes)


class SpeccError(Exception):
    """Base of every error specc reports to a user; rendered by specc.diagnostics."""

    exit_code = 2

    def __init__(self, diagnostics: Iterable[Diagnostic], source: Source | None = None,
                 name: str | None = None):
        self.diagnostics = tuple(diagnostics)
        self.source = source
        self.name = name if name is not None else (source.name if source is not None else None)
        super().__init__("; ".join(d.message for d in self.diagnostics if d.is_error))


class SpecError(SpeccError):
    """A mistake in a .net or IR .json file: syntax, names, arguments, shapes."""


class FileError(SpeccError):
    """A file that cannot be read: missing, unreadable, binary, not UTF-8."""


class DataError(SpeccError):
    """Data that does not fit: a corrupt data file, an input or label array of the wrong shape."""


class UsageError(SpeccError):
    """A command used wrongly (bad flag value, conflicting options)."""


class RunError(SpeccError):
    """A run that failed after starting: NaN, divergence, interruption."""

    exit_code = 1


def by_severity(found: Iterable[Diagnostic]) -> tuple[list[Diagnostic], list[Diagnostic]]:
    """(errors, warnings) of a list of diagnostics, each in the order given."""
    found = list(found)
    return [d for d in found if d.is_error], [d for d in found if not d.is_error]
