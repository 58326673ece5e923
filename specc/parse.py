"""Stage 1: text -> syntax tree (specc.syntax), or a SpecError pointing at the first syntax error."""
from __future__ import annotations

import re
from functools import cache

from lark import Lark
from lark.exceptions import UnexpectedInput

from specc import syntax as s
from specc.errors import Diagnostic, SpecError
from specc.resources import grammar_text
from specc.source import Source
from specc.syntax_errors import syntax_diagnostic
from specc.transform import ToSyntax


@cache
def _parser() -> Lark:
    return Lark(grammar_text("specc.lark"), parser="lalr", propagate_positions=True,
                maybe_placeholders=True)


MAX_SYNTAX_ERRORS = 20
_KEYWORD_LINE = re.compile(r"\s*(input|block|train|let|output|layer)\b")
_NAME_AT_START = re.compile(r"[A-Za-z_]")


def parse(source: Source) -> s.Module:
    """Parse a whole .net file. Layout and comments carry no meaning.

    After a syntax error, parsing starts again at the next line that begins a statement
    (`input`, `block`, `train`, or an unindented chain), so later mistakes are reported too,
    while the rest of a broken statement, which would only repeat the mistake, is not.
    """
    lines = source.text.split("\n")
    errors: list[Diagnostic] = []
    text = source.text
    while True:
        try:
            tree = _parser().parse(text)
            break
        except UnexpectedInput as e:
            errors.append(syntax_diagnostic(e, source, text, _parser().terminals))
            resume = _next_statement(lines, errors[-1].span.line if errors[-1].span else len(lines))
            if resume is None or len(errors) >= MAX_SYNTAX_ERRORS:
                break
            text = "\n" * (resume - 1) + "\n".join(lines[resume - 1:])  # same line numbers as the file
    if errors:
        raise SpecError(errors, source) from None
    try:
        return ToSyntax().transform(tree)
    except RecursionError:  # the LALR parser is iterative; building the tree is not
        raise SpecError([Diagnostic(
            "parentheses or calls nest too deeply", None, "too-deep",
            hint="a network needs no more than a few levels of `( )`; use blocks to name the parts")],
            source) from None


def _next_statement(lines: list[str], after: int) -> int | None:
    """The first line after line `after` (1-based) that starts a new statement."""
    previous = lines[after - 1].split("#")[0].rstrip() if 0 < after <= len(lines) else ""
    for n in range(after + 1, len(lines) + 1):
        line = lines[n - 1]
        code = line.split("#")[0].rstrip()
        if not code:
            continue
        if _KEYWORD_LINE.match(line) or (_NAME_AT_START.match(line) and not previous.endswith(("->", "(", ","))):
            return n
        previous = code
    return None

