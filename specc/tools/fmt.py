"""`specc fmt`: the one canonical layout of a .net file; comments and blank-line groups kept, the network unchanged.

The layout: `a -> b` and `key = value` with spaces, `Affine(50, init=he)` without; a chain on one
line when it fits in WIDTH columns (and holds no comment), else one step per line, continued with
`  -> step`; `train { }` settings one per line, two spaces in, their `=` aligned; at most one blank
line where the source had one or more; LF line endings and one final newline. Numbers and strings
keep their spelling (`1e-4` stays `1e-4`). A comment stays on the line of the code it follows
(trailing) or above the code that follows it (a line of its own).

Every run checks that the IR of the result equals the IR of the input (spans aside), and refuses a
file with errors; `annotate=True` writes the shape lens into trailing comments (specc.tools.annotate),
one step per line, and a file that holds such comments has them refreshed by every run.
"""
from __future__ import annotations

import bisect
import difflib
import re
from dataclasses import dataclass, field
from typing import Any

from specc import api
from specc import syntax as s
from specc.check import CheckedNetwork
from specc.errors import Diagnostic, SpecError
from specc.parse import parse
from specc.source import Source, Span
from specc.tools import annotate as lens
from specc.tools.text import Positions, Tok, tokens

WIDTH = 100
INDENT = "  "
_BLANK = re.compile(r"\n[ \t\f\r]*\n")


@dataclass
class _Line:
    text: str
    start: int  # source offsets of the code it renders
    end: int
    indent: str = ""
    comment_indent: str = ""  # of the comment lines above it
    figures: lens.Figures | None = None  # its annotation, with annotate=True
    trailing: list[str] = field(default_factory=list)
    above: list[tuple[str, int, int]] = field(default_factory=list)  # comment lines: (text, start, end)


def format_source(source: Source, annotate: bool = False) -> str:
    """The canonical text of a .net source; SpecError if it has errors (or is an IR .json file)."""
    if source.name.lower().endswith(".json"):
        raise SpecError([Diagnostic("fmt formats .net files; this is an IR .json file", None, "not-net")], source)
    found = api.check_any(source)  # refuses a file with errors, listing them
    checked = found if isinstance(found, CheckedNetwork) else None  # (a computational graph has no shapes to annotate)
    every = tokens(source.text)
    # once annotated, a file stays annotated: fmt keeps its figures fresh
    annotate = annotate or any(t.type == "COMMENT" and lens.strip_annotation(t.text) != t.text.rstrip()
                               for t in every)
    text = _Layout(source, parse(source), checked if annotate and checked is not None else None, every).render()
    _same_network(source, text)
    return text


def diff(source: Source, formatted: str) -> str:
    """A unified diff from the source to its formatted text ('' when they are the same)."""
    return "".join(difflib.unified_diff(source.text.splitlines(keepends=True), formatted.splitlines(keepends=True),
                                        f"{source.name}", f"{source.name} (formatted)"))


def without_spans(doc: Any) -> Any:
    """An IR document without where things were written: what fmt must leave unchanged."""
    if isinstance(doc, dict):
        return {k: without_spans(v) for k, v in doc.items()
                if k not in ("span", "arg_spans", "key_spans", "call", "definition") and not k.endswith("_spans")
                and not k.endswith("_span")}
    if isinstance(doc, list):
        return [without_spans(v) for v in doc]
    return doc


def _same_network(source: Source, text: str) -> None:
    after = Source(source.name, text)
    try:
        same = without_spans(api.ir_document(source)) == without_spans(api.ir_document(after))
    except SpecError:
        same = False
    if not same:  # a bug in fmt, never the user's: say so rather than write a different network
        raise SpecError([Diagnostic(
            "fmt would change the network (a bug in specc fmt); the file is left as it is", None, "fmt-changed-ir",
            hint="please report it with the file")], source)


class _Layout:
    def __init__(self, source: Source, module: s.Module, checked: CheckedNetwork | None, every: list[Tok]):
        self.text = source.text
        self.pos = Positions(source.text)
        self.module = module
        self.checked = checked
        self.code = [t for t in every if t.type != "COMMENT"]
        self.comments = [t for t in every if t.type == "COMMENT"]
        self.code_starts = [t.start for t in self.code]
        self.lines: list[_Line] = []

    # --- values and steps, on one line each ----------------------------------------------

    def _spaced_text(self, span: Span) -> str:
        """The code tokens of a span with one space where the source had any space between them."""
        a, b = self.pos.start(span), self.pos.end(span)
        i = bisect.bisect_left(self.code_starts, a)
        out: list[str] = []
        previous_end = None
        while i < len(self.code) and self.code[i].start < b:
            tok = self.code[i]
            if previous_end is not None and tok.start > previous_end:
                out.append(" ")
            out.append(tok.text)
            previous_end = tok.start + len(tok.text)
            i += 1
        return "".join(out)

    def _span_text(self, span: Span) -> str:
        """The code tokens of a span, joined without space: a number as written (`-1e-4`, `1_000`)."""
        a, b = self.pos.start(span), self.pos.end(span)
        i = bisect.bisect_left(self.code_starts, a)
        out = []
        while i < len(self.code) and self.code[i].start < b:
            out.append(self.code[i].text)
            i += 1
        return "".join(out)

    def value(self, v: s.Value) -> str:
        if isinstance(v, s.Call):
            return f"{v.name}({self.args(v.args)})"
        if isinstance(v, s.Name):
            return v.name
        return self._span_text(v.span)  # numbers and strings keep their spelling

    def args(self, args: tuple[s.Arg, ...]) -> str:
        return ", ".join(self.value(a.value) if a.key is None else f"{a.key}={self.value(a.value)}" for a in args)

    def item(self, item: s.Item) -> str:
        if isinstance(item, s.Chain):
            return "(" + " -> ".join(self.item(i) for i in item.items) + ")"
        if isinstance(item, s.Repeat):
            return f"{self.item(item.body)} * {self.value(item.count)}"
        return item.name + (f"({self.args(item.args)})" if item.args else "")

    # --- statements ------------------------------------------------------------------------

    def _add(self, text: str, start: int, end: int, indent: str = "", comment_indent: str | None = None,
             figures: lens.Figures | None = None) -> None:
        self.lines.append(_Line(text, start, end, indent, indent if comment_indent is None else comment_indent,
                                figures))

    def _comment_inside(self, start: int, end: int) -> bool:
        return any(start < c.start < end for c in self.comments)

    def chain(self, prefix: str, chain: s.Chain, start: int, network: bool) -> None:
        steps = [self.item(i) for i in chain.items]
        end = self.pos.end(chain.items[-1].span)
        one_line = prefix + " -> ".join(steps)
        annotated = network and self.checked is not None
        if not annotated and len(one_line) <= WIDTH and not self._comment_inside(start, end):
            self._add(one_line, start, end)
            return
        for k, (item, text) in enumerate(zip(chain.items, steps)):
            figures = lens.step_figures(self.checked, item.span) if annotated and self.checked else None
            if k == 0:
                self._add(prefix + text, start, self.pos.end(item.span), figures=figures)
            else:
                self._add("-> " + text, self.pos.start(item.span), self.pos.end(item.span), INDENT, figures=figures)

    def statement(self, st: s.Statement) -> None:
        start, end = self.pos.start(st.span), self.pos.end(st.span)
        if isinstance(st, s.Input):
            figures = lens.Figures(self.checked.input_shape) if self.checked is not None else None
            self._add("input " + self._span_text(st.span).removeprefix("input"), start, end, figures=figures)
        elif isinstance(st, s.NetworkDef):
            self.chain("", st.chain, start, network=True)
        elif isinstance(st, s.BlockDef):
            params = ""
            if st.params:
                params = "(" + ", ".join(p.name if p.default is None else f"{p.name}={self.value(p.default)}"
                                         for p in st.params) + ")"
            self.chain(f"block {st.name}{params} = ", st.body, start, network=False)
        elif isinstance(st, s.TrainDef):
            self.train(st, start, end)
        else:  # a graph statement (input x = ..., let, output): as written, on one line
            self._add(self._spaced_text(st.span), start, end)

    def train(self, t: s.TrainDef, start: int, end: int) -> None:
        if not t.settings and not self._comment_inside(start, end):
            self._add("train {}", start, end)
            return
        brace = self.code[bisect.bisect_left(self.code_starts, start) + 1]  # `train` then `{`
        self._add("train {", start, brace.end)
        width = max((len(x.key) for x in t.settings), default=0)
        for x in t.settings:
            self._add(f"{x.key.ljust(width)} = {self.value(x.value)}", self.pos.start(x.span),
                      self.pos.end(x.span), INDENT)
        self._add("}", end - 1, end, "", INDENT)

    # --- comments, blank lines, the text ---------------------------------------------------

    def _place_comments(self) -> list[tuple[str, int, int]]:
        """Put each comment on a line (trailing) or above one; returns those after the last line."""
        ends = [line.end for line in self.lines]
        tail: list[tuple[str, int, int]] = []
        for c in self.comments:
            text = c.text.rstrip()
            if self.checked is not None:
                text = lens.strip_annotation(text)
                if not text:
                    continue
            j = bisect.bisect_right(ends, c.start) - 1  # the last line that ends before the comment
            inside = j + 1 < len(self.lines) and self.lines[j + 1].start < c.start
            if inside:  # within a line's code (an argument list over several lines): it trails that line
                self.lines[j + 1].trailing.append(text)
            elif j >= 0 and "\n" not in self.text[self.lines[j].end:c.start]:
                self.lines[j].trailing.append(text)
            elif j + 1 < len(self.lines):
                self.lines[j + 1].above.append((text, c.start, c.end))
            else:
                tail.append((text, c.start, c.end))
        return tail

    def render(self) -> str:
        for st in self.module.statements:
            self.statement(st)
        tail = self._place_comments()
        # where the source had a blank line: between the end of whatever came before and a start
        boundaries = sorted([line.end for line in self.lines] + [c.end for c in self.comments])

        def blank_before(start: int) -> bool:
            k = bisect.bisect_right(boundaries, start) - 1
            return k >= 0 and bool(_BLANK.search(self.text[boundaries[k]:start]))

        out: list[str] = []

        def emit(text: str, start: int) -> None:
            if out and blank_before(start) and out[-1] != "":
                out.append("")
            out.append(text)

        column = self._annotation_column()
        for line in self.lines:
            for text, start, _ in line.above:
                emit(line.comment_indent + text, start)
            code = line.indent + line.text
            trailing = "  ".join(line.trailing)
            if trailing:
                code += "  " + trailing
            if line.figures is not None:
                code = code.ljust(column) + line.figures.comment()
            emit(code, line.start)
        for text, start, _ in tail:
            emit(text, start)
        return "\n".join(out) + "\n"

    def _annotation_column(self) -> int:
        """Annotations line up, two spaces after the longest annotated line."""
        widths = [len(line.indent + line.text + "".join("  " + t for t in line.trailing))
                  for line in self.lines if line.figures is not None]
        return max(widths, default=0) + 2
