"""The one error hierarchy: every mistake a user can make is a SpeccError carrying diagnostics."""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Callable, Iterable, Literal, Mapping

if TYPE_CHECKING:
    from specc.source import Source


@dataclass(frozen=True, order=True)
class Span:
    """A region of a source file: 1-based line and column, end column exclusive."""

    line: int
    col: int
    end_line: int
    end_col: int

    def to_json(self) -> dict[str, int]:
        return {"line": self.line, "col": self.col, "end_line": self.end_line, "end_col": self.end_col}

    @classmethod
    def from_json(cls, d: Mapping[str, int]) -> "Span":
        return cls(d["line"], d["col"], d["end_line"], d["end_col"])


Path = tuple  # a path into the IR document: ("layers", 2, "args", "kernel")
Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Label:
    """A secondary place in the same file, with a short note shown under it."""

    span: Span | None
    message: str
    path: Path = ()


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
    path: Path = ()  # stages after lowering name IR paths; the API turns them into spans
    severity: Severity = "error"

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def located(self, locate: "Callable[[Path], Span | None]") -> "Diagnostic":
        """This diagnostic with its spans filled in from IR paths."""
        span = self.span if self.span is not None or not self.path else locate(self.path)
        notes = tuple(n if n.span is not None else Label(locate(n.path), n.message, n.path)
                      for n in self.notes)
        return replace(self, span=span, notes=notes)


class SpeccError(Exception):
    """Base of every error specc reports to a user; rendered by specc.diagnostics."""

    exit_code = 2

    def __init__(self, diagnostics: Iterable[Diagnostic], source: "Source | None" = None,
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


def did_you_mean(word: str, candidates: Iterable[str], shown: Mapping[str, str] | None = None) -> str | None:
    """A ranked 'did you mean' hint: same spelling in another case first, then the closest names.

    `shown` maps a spelling (an alias) to the name to suggest in its place.
    """
    shown = shown or {}
    candidates = list(dict.fromkeys(candidates))
    same_case = [c for c in candidates if c.lower() == word.lower()]
    lowered = {c.lower(): c for c in reversed(candidates)}
    # the same word in another case is what was meant: nothing else is worth listing beside it
    close = [] if same_case else \
        [lowered[m] for m in difflib.get_close_matches(word.lower(), list(lowered), n=3, cutoff=0.6)]
    ranked = list(dict.fromkeys(shown.get(c, c) for c in same_case + close))[:3]
    if not ranked:
        return None
    if len(ranked) == 1:
        return f"did you mean '{ranked[0]}'?"
    return "did you mean " + ", ".join(f"'{r}'" for r in ranked[:-1]) + f" or '{ranked[-1]}'?"
