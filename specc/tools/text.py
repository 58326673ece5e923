"""What the tools read beside the syntax tree: every token with its offset (comments included), and positions."""
from __future__ import annotations

import bisect
from dataclasses import dataclass
from functools import cache

from lark import Lark, Token

from specc.resources import grammar_text
from specc.source import Span


@cache
def grammar() -> Lark:
    """grammar/specc.lark, for its lexer and its terminals (the parser proper is specc.parse's)."""
    return Lark(grammar_text("specc.lark"), parser="lalr")


@dataclass(frozen=True)
class Tok:
    type: str  # the grammar's terminal name: NAME, INT, COMMENT, __ANON_0 ('->'), ...
    text: str
    start: int  # character offsets into the source, end exclusive
    end: int
    line: int  # 1-based


def tokens(text: str) -> list[Tok]:
    """Every token of a source but whitespace, comments too, in order.

    The grammar ignores comments, so the parser never sees them; lexing again with nothing ignored
    finds them with the grammar's own COMMENT terminal (no second definition of the syntax)."""
    out = []
    for t in grammar().lex(text, dont_ignore=True):
        if t.type != "WS":
            out.append(_tok(t))
    return out


def _tok(t: Token) -> Tok:
    # a lexed token has its positions; lark types them Optional (for hand-made tokens)
    return Tok(t.type, str(t), t.start_pos, t.end_pos, t.line)  # type: ignore[arg-type]


class Positions:
    """Offsets <-> 1-based (line, column) of one text, columns in characters, as specc's spans count them."""

    def __init__(self, text: str):
        self.text = text
        self.starts = [0] + [i + 1 for i, ch in enumerate(text) if ch == "\n"]

    def offset(self, line: int, col: int) -> int:
        return self.starts[line - 1] + col - 1 if 1 <= line <= len(self.starts) else len(self.text)

    def start(self, span: Span) -> int:
        return self.offset(span.line, span.col)

    def end(self, span: Span) -> int:
        return self.offset(span.end_line, span.end_col)

    def line_col(self, offset: int) -> tuple[int, int]:
        line = bisect.bisect_right(self.starts, offset)
        return line, offset - self.starts[line - 1] + 1


def contains(outer: Span, inner: Span) -> bool:
    return (outer.line, outer.col) <= (inner.line, inner.col) and \
        (inner.end_line, inner.end_col) <= (outer.end_line, outer.end_col)
