"""The one renderer of diagnostics: `file:line:col: error: message` (or warning), the line, carets, help."""
from __future__ import annotations

from typing import Iterable

from rich.console import Console
from rich.text import Text

from specc.errors import Diagnostic, SpeccError, by_severity
from specc.source import Source, Span

_TAB = 4
_WIDTH = 100  # longest source excerpt shown; longer lines are cut around the caret
_STYLE = {"error": "bold red", "warning": "bold yellow"}


def render(error: SpeccError, console: Console) -> None:
    """Print every diagnostic of an error (its warnings too), then a count when there are several."""
    render_diagnostics(error.diagnostics, error.source, error.name, console)


def render_diagnostics(diagnostics: Iterable[Diagnostic], source: Source | None, name: str | None,
                       console: Console) -> None:
    """Print diagnostics of one file in the order given, then a count when there are several."""
    shown = list(diagnostics)
    for d in shown:
        console.print(format_diagnostic(d, source, name), soft_wrap=True)
    if len(shown) > 1:
        console.print(Text(count(shown) + (f" in {name}" if name else ""),
                           style=_STYLE["error" if any(d.is_error for d in shown) else "warning"]), soft_wrap=True)


def count(diagnostics: Iterable[Diagnostic]) -> str:
    """'2 errors', '1 warning', '2 errors and 1 warning'."""
    errors, warnings = by_severity(diagnostics)
    parts = [f"{n} {what}{'s' * (n != 1)}" for n, what in ((len(errors), "error"), (len(warnings), "warning")) if n]
    return " and ".join(parts)


def format_diagnostic(d: Diagnostic, source: Source | None, name: str | None) -> Text:
    out = Text()
    where = name or ""
    if d.span is not None and name:
        where += f":{d.span.line}:{d.span.col}"
    if where:
        out.append(where + ": ", style="bold")
    out.append(d.severity, style=_STYLE[d.severity])
    out.append(": ")
    out.append(d.message, style="bold")
    if d.code and d.code != "error":
        out.append(f" [{d.code}]", style="dim")
    out.append("\n")
    if source is not None and d.span is not None:
        labels = [(d.span, d.label, True)] + [(n.span, n.message, False) for n in d.notes if n.span]
        out.append_text(_snippet(source, labels, _STYLE[d.severity]))
    if d.hint:
        out.append("  help: ", style="bold cyan")
        out.append(d.hint + "\n")
    return out


def _snippet(source: Source, labels: list[tuple[Span, str, bool]], style: str) -> Text:
    lines = sorted({span.line for span, _, _ in labels})
    gutter = len(str(lines[-1]))
    out = Text()
    previous = None
    for n in lines:
        if previous is not None and n > previous + 1:
            out.append(" " * gutter + " ...\n", style="blue")
        previous = n
        raw = source.line(n)
        shown, shift = _window(raw.expandtabs(_TAB), [_visual(raw, s.col) for s, _, _ in labels if s.line == n])
        out.append(f"{n:>{gutter}} | ", style="blue")
        out.append(shown + "\n")
        for span, message, primary in labels:
            if span.line != n:
                continue
            start = _visual(raw, span.col) - shift
            end = _visual(raw, span.end_col) - shift if span.end_line == n else len(shown)
            width = max(1, min(end, len(shown) + 1) - start)
            out.append(" " * gutter + " | ", style="blue")
            out.append(" " * max(0, start))
            mark = "^" if primary else "-"
            out.append(mark * width + (" " + message if message else ""),
                       style=style if primary else "blue")
            out.append("\n")
    return out


def _visual(raw: str, col: int) -> int:
    """0-based display column of a 1-based character column, with tabs expanded."""
    return len(raw[: max(0, col - 1)].expandtabs(_TAB))


def _window(line: str, columns: list[int]) -> tuple[str, int]:
    """Cut a long line to _WIDTH characters around the marked columns."""
    if len(line) <= _WIDTH:
        return line, 0
    start = max(0, min(columns, default=0) - _WIDTH // 3)
    text = line[start:start + _WIDTH]
    prefix = "..." if start > 0 else ""
    return prefix + text + ("..." if start + _WIDTH < len(line) else ""), start - len(prefix)
