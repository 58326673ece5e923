"""Source text and places in it: a spec file's text with its name, and spans of lines and columns."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping


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



@dataclass(frozen=True)
class Source:
    """A named text; `name` is what diagnostics print before `:line:col`."""

    name: str
    text: str

    def line(self, n: int) -> str:
        lines = self.text.splitlines()
        return lines[n - 1] if 1 <= n <= len(lines) else ""

    def position(self, offset: int) -> tuple[int, int]:
        """1-based (line, col) of a character offset."""
        before = self.text[:offset]
        line = before.count("\n") + 1
        return line, offset - (before.rfind("\n") + 1) + 1
