"""Lark's parse tree -> specc.syntax nodes, each with its source span (no checks: those come later)."""
from __future__ import annotations

import re

from lark import Token, Transformer, v_args

from specc import syntax as s
from specc.source import Span


def meta_span(meta) -> Span:
    return Span(meta.line, meta.column, meta.end_line, meta.end_column)


def tok_span(tok: Token) -> Span:
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
        return s.BinOp(op, children[0], children[1], meta_span(meta))
    return build



@v_args(meta=True)
class ToSyntax(Transformer):
    def start(self, meta, children):
        return s.Module(tuple(children))

    def dims_flat(self, meta, children):
        return (_int(children[0]),), tok_span(children[0])

    def dims_image(self, meta, children):
        return tuple(_int(d) for d in str(children[0]).split("x")), tok_span(children[0])

    def input_decl(self, meta, children):
        dims, _ = children[0]
        return s.Input(dims, meta_span(meta))

    def block_def(self, meta, children):
        name, params, body = children
        return s.BlockDef(str(name), params or (), body, meta_span(meta), tok_span(name))

    def params(self, meta, children):
        return _present(children)

    def param(self, meta, children):
        name, default = children
        return s.BlockParam(str(name), default, meta_span(meta))

    def chain(self, meta, children):
        return s.Chain(tuple(children), meta_span(meta))

    def network(self, meta, children):
        return s.NetworkDef(children[0], meta_span(meta))

    def repeat(self, meta, children):
        body, count = children
        return s.Repeat(body, count, meta_span(meta))

    def call(self, meta, children):
        name, args = children
        return s.Call(str(name), args or (), meta_span(meta), tok_span(name))

    call_value = call

    def arguments(self, meta, children):
        return _present(children)

    def positional(self, meta, children):
        value = children[0]
        return s.Arg(None, value, value.span)

    def keyword(self, meta, children):
        key, value = children
        return s.Arg(str(key), value, meta_span(meta), tok_span(key))

    def train_def(self, meta, children):
        return s.TrainDef(tuple(children), meta_span(meta))

    def setting(self, meta, children):
        key, value = children
        return s.SettingDef(str(key), value, meta_span(meta), tok_span(key))

    def number(self, meta, children):
        sign, tok = children
        value = _int(tok) if tok.type == "INT" else float(str(tok).replace("_", ""))
        return s.Number(-value if sign == "-" else value, meta_span(meta))

    def string(self, meta, children):
        return s.String(_unquote(str(children[0])), meta_span(meta))

    def name(self, meta, children):
        return s.Name(str(children[0]), meta_span(meta))

    # --- layers written as expressions ---

    def layer_expr(self, meta, children):
        name, params, expr = children
        body = (s.GraphValue("y", expr, True, expr.span, expr.span),)
        return s.LayerDef(str(name), params or (), body, meta_span(meta), tok_span(name))

    def layer_body(self, meta, children):
        name, params, *items = children
        return s.LayerDef(str(name), params or (), _present(items), meta_span(meta), tok_span(name))

    def param_decl(self, meta, children):
        name, *dims, init = children
        return s.ParamDecl(str(name), _present(dims), init, meta_span(meta), tok_span(name))

    def dim_size(self, meta, children):
        return s.Dim(_int(children[0]), tok_span(children[0]))

    def dim_name(self, meta, children):
        return s.Dim(str(children[0]), tok_span(children[0]))

    def layer_output(self, meta, children):
        return self.let_value(meta, children, output=True)

    # --- computational graphs ---

    def graph_input(self, meta, children):
        name, value = children
        return s.GraphInput(str(name), value, meta_span(meta), tok_span(name))

    fill = call

    def array(self, meta, children):
        return s.Array(_present(children), meta_span(meta))

    def let_value(self, meta, children, output: bool = False):
        name, expr = children
        return s.GraphValue(str(name), expr, output, meta_span(meta), tok_span(name))

    def output_value(self, meta, children):
        return self.let_value(meta, children, output=True)

    add, sub, mul, div = _binary("+"), _binary("-"), _binary("*"), _binary("/")
    matmul, pow = _binary("@"), _binary("**")

    def neg(self, meta, children):
        return s.Neg(children[0], meta_span(meta))

    def attribute(self, meta, children):
        base, name = children
        return s.Attribute(base, str(name), meta_span(meta), tok_span(name))

    def ref(self, meta, children):
        return s.Ref(str(children[0]), meta_span(meta))

    def constant(self, meta, children):
        tok = children[0]
        return s.Number(_int(tok) if tok.type == "INT" else float(str(tok).replace("_", "")), meta_span(meta))

    def apply(self, meta, children):
        name, *args = children
        present = _present(args)
        return s.Apply(str(name), tuple(a for a in present if not isinstance(a, s.Keyword)),
                       tuple(a for a in present if isinstance(a, s.Keyword)), meta_span(meta), tok_span(name))

    def fn_keyword(self, meta, children):
        key, value = children
        return s.Keyword(str(key), value, meta_span(meta), tok_span(key))

