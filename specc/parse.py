"""Stage 1: text -> syntax tree (specc.syntax), or a SpecError pointing at the first syntax error."""
from __future__ import annotations

import re
from functools import cache
from typing import cast

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from specc import syntax as s
from specc.errors import Diagnostic, SpecError
from specc.resources import grammar_text
from specc.source import Source, Span


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
            errors.append(_syntax_diagnostic(e, source, text))
            resume = _next_statement(lines, errors[-1].span.line if errors[-1].span else len(lines))
            if resume is None or len(errors) >= MAX_SYNTAX_ERRORS:
                break
            text = "\n" * (resume - 1) + "\n".join(lines[resume - 1:])  # same line numbers as the file
    if errors:
        raise SpecError(errors, source) from None
    try:
        return _ToSyntax().transform(tree)
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


# --- building the tree --------------------------------------------------------------

def _meta_span(meta) -> Span:
    return Span(meta.line, meta.column, meta.end_line, meta.end_column)


def _tok_span(tok: Token) -> Span:
    # lark types a Token's positions Optional (a hand-made Token has none); a lexed one has them all
    return Span(tok.line, tok.column, tok.end_line, tok.end_column)  # type: ignore[arg-type]


def _int(text: str) -> int | float:
    digits = text.replace("_", "")
    # Python refuses to convert very long digit strings; such numbers are absurd anyway
    # and are refused later as out of range, so keep them as a float (possibly inf).
    return int(digits) if len(digits) <= 30 else float(digits)


_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\", '"': '"', "'": "'"}


def _unquote(text: str) -> str:
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), text[1:-1])


def _present(items: list) -> tuple:
    return tuple(i for i in items if i is not None)


def _binary(op: str):
    """The transformer method of one binary operator."""
    def build(self, meta, children):
        return s.BinOp(op, children[0], children[1], _meta_span(meta))
    return build


@v_args(meta=True)
class _ToSyntax(Transformer):
    def start(self, meta, children):
        return s.Module(tuple(children))

    def dims_flat(self, meta, children):
        return (_int(children[0]),), _tok_span(children[0])

    def dims_image(self, meta, children):
        return tuple(_int(d) for d in str(children[0]).split("x")), _tok_span(children[0])

    def input_decl(self, meta, children):
        dims, _ = children[0]
        return s.Input(dims, _meta_span(meta))

    def block_def(self, meta, children):
        name, params, body = children
        return s.BlockDef(str(name), params or (), body, _meta_span(meta), _tok_span(name))

    def params(self, meta, children):
        return _present(children)

    def param(self, meta, children):
        name, default = children
        return s.BlockParam(str(name), default, _meta_span(meta))

    def chain(self, meta, children):
        return s.Chain(tuple(children), _meta_span(meta))

    def network(self, meta, children):
        return s.NetworkDef(children[0], _meta_span(meta))

    def repeat(self, meta, children):
        body, count = children
        return s.Repeat(body, count, _meta_span(meta))

    def call(self, meta, children):
        name, args = children
        return s.Call(str(name), args or (), _meta_span(meta), _tok_span(name))

    call_value = call

    def arguments(self, meta, children):
        return _present(children)

    def positional(self, meta, children):
        value = children[0]
        return s.Arg(None, value, value.span)

    def keyword(self, meta, children):
        key, value = children
        return s.Arg(str(key), value, _meta_span(meta), _tok_span(key))

    def train_def(self, meta, children):
        return s.TrainDef(tuple(children), _meta_span(meta))

    def setting(self, meta, children):
        key, value = children
        return s.SettingDef(str(key), value, _meta_span(meta), _tok_span(key))

    def number(self, meta, children):
        sign, tok = children
        value = _int(tok) if tok.type == "INT" else float(str(tok).replace("_", ""))
        return s.Number(-value if sign == "-" else value, _meta_span(meta))

    def string(self, meta, children):
        return s.String(_unquote(str(children[0])), _meta_span(meta))

    def name(self, meta, children):
        return s.Name(str(children[0]), _meta_span(meta))

    # --- layers written as expressions ---

    def layer_expr(self, meta, children):
        name, params, expr = children
        body = (s.GraphValue("y", expr, True, expr.span, expr.span),)
        return s.LayerDef(str(name), params or (), body, _meta_span(meta), _tok_span(name))

    def layer_body(self, meta, children):
        name, params, *items = children
        return s.LayerDef(str(name), params or (), _present(items), _meta_span(meta), _tok_span(name))

    def param_decl(self, meta, children):
        name, *dims, init = children
        return s.ParamDecl(str(name), _present(dims), init, _meta_span(meta), _tok_span(name))

    def dim_size(self, meta, children):
        return s.Dim(_int(children[0]), _tok_span(children[0]))

    def dim_name(self, meta, children):
        return s.Dim(str(children[0]), _tok_span(children[0]))

    def layer_output(self, meta, children):
        return self.let_value(meta, children, output=True)

    # --- computational graphs ---

    def graph_input(self, meta, children):
        name, value = children
        return s.GraphInput(str(name), value, _meta_span(meta), _tok_span(name))

    fill = call

    def array(self, meta, children):
        return s.Array(_present(children), _meta_span(meta))

    def let_value(self, meta, children, output: bool = False):
        name, expr = children
        return s.GraphValue(str(name), expr, output, _meta_span(meta), _tok_span(name))

    def output_value(self, meta, children):
        return self.let_value(meta, children, output=True)

    add, sub, mul, div = _binary("+"), _binary("-"), _binary("*"), _binary("/")
    matmul, pow = _binary("@"), _binary("**")

    def neg(self, meta, children):
        return s.Neg(children[0], _meta_span(meta))

    def attribute(self, meta, children):
        base, name = children
        return s.Attribute(base, str(name), _meta_span(meta), _tok_span(name))

    def ref(self, meta, children):
        return s.Ref(str(children[0]), _meta_span(meta))

    def constant(self, meta, children):
        tok = children[0]
        return s.Number(_int(tok) if tok.type == "INT" else float(str(tok).replace("_", "")), _meta_span(meta))

    def apply(self, meta, children):
        name, *args = children
        present = _present(args)
        return s.Apply(str(name), tuple(a for a in present if not isinstance(a, s.Keyword)),
                       tuple(a for a in present if isinstance(a, s.Keyword)), _meta_span(meta), _tok_span(name))

    def fn_keyword(self, meta, children):
        key, value = children
        return s.Keyword(str(key), value, _meta_span(meta), _tok_span(key))


# --- syntax errors ------------------------------------------------------------------

_TERMINAL_NAMES = {
    "NAME": "a name", "INT": "an integer", "FLOAT": "a number", "STRING": "a string",
    "SHAPE": "a shape such as 1x28x28", "SIGN": "a sign", "$END": "the end of the file",
}
_ORDER = ["__ANON", "RPAR", "COMMA", "LPAR", "EQUAL", "RBRACE", "LBRACE", "STAR", "NAME",
          "INT", "FLOAT", "SHAPE", "STRING", "SIGN", "INPUT", "BLOCK", "TRAIN", "$END"]


def _describe_terminal(name: str) -> str:
    if name in _TERMINAL_NAMES:
        return _TERMINAL_NAMES[name]
    for t in _parser().terminals:
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


def _expected(names: set[str]) -> str:
    if "RBRACE" in names:  # inside `train { }`, where separators are optional
        return "a setting (`name = value`) or '}'" if "NAME" in names else "'}'"
    if {"INPUT", "BLOCK", "TRAIN"} <= names:
        rest = _expected(names - _STATEMENT_STARTS) if names - _STATEMENT_STARTS else ""
        if not rest:
            return "a new statement (a chain of layers, `input`, `block` or `train`)"
        return rest.replace(" or ", ", ") + " or the end of the statement"
    shown = sorted({_describe_terminal(n) for n in names if n != "SIGN"},
                   key=lambda d: min(_rank(n) for n in names if _describe_terminal(n) == d))
    if len(shown) > 5:
        shown = shown[:4] + ["..."]
    if len(shown) <= 1:
        return "".join(shown)
    return ", ".join(shown[:-1]) + " or " + shown[-1]


def _end_span(source: Source) -> Span:
    text = source.text.rstrip()
    line, col = source.position(len(text))
    return Span(line, col, line, col + 1)


def _syntax_diagnostic(e: UnexpectedInput, source: Source, text: str | None = None) -> Diagnostic:
    """`text` is what was parsed: the source, or the part of it parsed again after an error."""
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
                          hint=_token_hint("$END", set(e.expected), None, source, text))
    assert isinstance(e, UnexpectedToken)
    tok = e.token
    if tok.type == "LSQB":  # '[' is a token only for a graph input's value
        return Diagnostic("unexpected character '['", _tok_span(tok), "syntax", label="not part of the language",
                          hint=_char_hint("["))
    expected = set(e.accepts or e.expected)
    if tok.type == "$END":
        span, found = _end_span(source), "the end of the file"
    else:
        span, found = _tok_span(tok), repr(str(tok))
    return Diagnostic(f"expected {_expected(expected)}, found {found}", span, "syntax",
                      label="unexpected here", hint=_token_hint(tok.type, expected, tok, source, text))


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


def _token_hint(found: str, expected: set[str], tok: Token | None, source: Source, text: str) -> str | None:
    # `tok` is a lexed token, so it has its positions; lark types them Optional (for hand-made tokens).
    arrow = any(_describe_terminal(n) == "'->'" for n in expected)
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
