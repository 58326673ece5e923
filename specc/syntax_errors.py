"""A syntax error from lark -> a Diagnostic: what was expected, what was found, and a hint."""
from __future__ import annotations

import re
from collections.abc import Collection
from typing import cast

from lark import Token
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken
from lark.lexer import TerminalDef

from specc.errors import Diagnostic
from specc.source import Source, Span
from specc.transform import tok_span

_TERMINAL_NAMES = {
    "NAME": "a name", "INT": "an integer", "FLOAT": "a number", "STRING": "a string",
    "SHAPE": "a shape such as 1x28x28", "SIGN": "a sign", "$END": "the end of the file",
}
_ORDER = ["__ANON", "RPAR", "COMMA", "LPAR", "EQUAL", "RBRACE", "LBRACE", "STAR", "NAME",
          "INT", "FLOAT", "SHAPE", "STRING", "SIGN", "INPUT", "BLOCK", "TRAIN", "$END"]


def _describe_terminal(name: str, terminals: Collection[TerminalDef]) -> str:
    if name in _TERMINAL_NAMES:
        return _TERMINAL_NAMES[name]
    for t in terminals:
        if t.name == name and t.pattern.type == "str":
            return f"'{t.pattern.value}'"
    return name.lower()


def _rank(name: str) -> int:
    for i, prefix in enumerate(_ORDER):
        if name.startswith(prefix):
            return i
    return len(_ORDER)


# Where a statement may end, the parser also accepts the start of the next one (a name, '(',
# `input`, `block`, `train` or the end of the file); listing those terminals one by one says
# little, so they are summed up as "the end of the statement".
_STATEMENT_STARTS = {"NAME", "LPAR", "INPUT", "BLOCK", "TRAIN", "LET", "OUTPUT", "LAYER", "$END"}


def _expected(names: set[str], terminals: Collection[TerminalDef]) -> str:
    if "RBRACE" in names:  # inside `train { }`, where separators are optional
        return "a setting (`name = value`) or '}'" if "NAME" in names else "'}'"
    if {"INPUT", "BLOCK", "TRAIN"} <= names:
        rest = _expected(names - _STATEMENT_STARTS, terminals) if names - _STATEMENT_STARTS else ""
        if not rest:
            return "a new statement (a chain of layers, `input`, `block` or `train`)"
        return rest.replace(" or ", ", ") + " or the end of the statement"
    shown = sorted({_describe_terminal(n, terminals) for n in names if n != "SIGN"},
                   key=lambda d: min(_rank(n) for n in names if _describe_terminal(n, terminals) == d))
    if len(shown) > 5:
        shown = shown[:4] + ["..."]
    if len(shown) <= 1:
        return "".join(shown)
    return ", ".join(shown[:-1]) + " or " + shown[-1]


def _end_span(source: Source) -> Span:
    text = source.text.rstrip()
    line, col = source.position(len(text))
    return Span(line, col, line, col + 1)


def syntax_diagnostic(e: UnexpectedInput, source: Source, text: str | None,
                      terminals: Collection[TerminalDef]) -> Diagnostic:
    """`text` is what was parsed: the source, or the part of it parsed again after an error (None: the
    source); `terminals` are the parser's, to name what it expected."""
    text = source.text if text is None else text
    if isinstance(e, UnexpectedCharacters):
        # lark declares pos_in_stream = None on UnexpectedInput; UnexpectedCharacters sets the offset
        pos = cast(int, e.pos_in_stream)
        char = text[pos] if pos < len(text) else "?"
        span = Span(e.line, e.column, e.line, e.column + 1)
        return Diagnostic(f"unexpected character {char!r}", span, "syntax",
                          label="not part of the language", hint=_char_hint(char))
    if isinstance(e, UnexpectedEOF):
        return Diagnostic("unexpected end of file", _end_span(source), "syntax",
                          hint=_token_hint("$END", set(e.expected), None, source, text, terminals))
    assert isinstance(e, UnexpectedToken)
    tok = e.token
    if tok.type == "LSQB":  # '[' is a token only for a graph input's value
        return Diagnostic("unexpected character '['", tok_span(tok), "syntax", label="not part of the language",
                          hint=_char_hint("["))
    expected = set(e.accepts or e.expected)
    if tok.type == "$END":
        span, found = _end_span(source), "the end of the file"
    else:
        span, found = tok_span(tok), repr(str(tok))
    return Diagnostic(f"expected {_expected(expected, terminals)}, found {found}", span, "syntax",
                      label="unexpected here", hint=_token_hint(tok.type, expected, tok, source, text, terminals))


def _char_hint(char: str) -> str | None:
    return {
        ":": "settings and keyword arguments use '=', as in `batch = 100` or `kernel=5`",
        ">": "layers are joined with '->'",
        "[": "lists are not part of the language of layers; write each argument separately "
             "(a list is only a graph input's value: `input x = [1.0, 2.0]`)",
        "{": "'{' opens only a `train { ... }` section",
        "\u2192": "write the arrow as '->'",
        "x": "an input shape is written without spaces: `input 1x28x28`",
    }.get(char)


def _token_hint(found: str, expected: set[str], tok: Token | None, source: Source, text: str,
                terminals: Collection[TerminalDef]) -> str | None:
    # `tok` is a lexed token, so it has its positions; lark types them Optional (for hand-made tokens).
    arrow = any(_describe_terminal(n, terminals) == "'->'" for n in expected)
    after = text[tok.end_pos:tok.end_pos + 1] if tok is not None and tok.end_pos is not None else ""
    line = source.line(tok.line).lstrip() if tok is not None else ""  # type: ignore[arg-type]
    if found == "$END":
        if "RPAR" in expected:
            return "a '(' is never closed"
        if "RBRACE" in expected:
            return "the `train {` section is never closed with '}'"
        if "NAME" in expected and not arrow:
            return "the chain ends with '->'; a layer is missing after it"
        return None
    if found == "EQUAL" and after == ">":
        return "layers are joined with '->'"
    if found in ("INT", "NAME") and line.startswith("input") and re.match(r"input\s+\d+\s*x", line):
        return "an input shape is written without spaces: `input 1x28x28`"
    if found == "LBRACE":
        return "'{' opens only a `train { ... }` section"
    if found in ("INT", "FLOAT", "SIGN") and "LPAR" in expected and tok is not None and re.search(
            r"(?<![\w.])(?!input\b)[A-Za-z_]\w*\s*$", text[:tok.start_pos]):
        return "arguments go in parentheses, as in `Affine(50)`"
    if found == "NAME" and tok is not None and re.match(r"x\d", str(tok)) \
            and text[tok.start_pos - 1:tok.start_pos].isdigit():  # type: ignore[operator]
        # `kernel=3x3`: the lexer reads 3, then the name x3
        return "'x' joins sizes only after `input` (`input 1x28x28`); an argument is one number, " \
               "as in `kernel=3` for a 3x3 kernel"
    if found in ("INT", "FLOAT", "NAME", "STRING") and "COMMA" in expected and "RPAR" in expected:
        return "separate arguments with ','"
    if expected == {"EQUAL"} and tok is not None:
        key = re.search(r"([A-Za-z_]\w*)\s*$", text[:tok.start_pos])
        return f"a setting is written `name = value`, as in `{key.group(1) if key else 'epochs'} = {tok}`"
    if found in ("INT", "FLOAT", "STRING", "SIGN") and "RBRACE" in expected:
        return "each setting is written `name = value`, one value each"
    if tok is not None and str(tok) == "->" and "RPAR" in expected:
        return "a '(' is not closed before the next '->'"
    if tok is not None and str(tok) == "->" and "INPUT" in expected:
        return "'->' must follow a layer; `input ...` and `block ...` are lines of their own"
    if tok is not None and str(tok) == "->":
        return "'->' joins two layers; a layer is missing before this one"
    if found == "SHAPE":
        return "a shape such as 1x28x28 is only written after `input`"
    if found == "EQUAL":
        return "'=' belongs in keyword arguments (`kernel=5`) and train settings"
    return None
