"""Lowering of graph statements: names resolved, definitions ordered, expressions flattened into nodes.

The IR of a graph is the optional `graph` member of an IR document (version 1 stays valid):

    {"inputs": [{"name": "x", "value": 2, "span": ...}],
     "nodes": [{"id": "t", "op": "add", "operands": ["x", "y"], "attrs": {}, "span": ...}, ...],
     "output": "z"}

A value is an input's or node's id: a `let` name, or `#3` for a part of an expression. Nodes are
in an order where every operand comes first (definitions may be written in any order, so a
cycle is possible and reported). Shapes are not judged here (specc.graph.check does); the inputs'
values are checked by specc.graph.inputs.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from specc import syntax as s
from specc.errors import Diagnostic, Label
from specc.graph.inputs import input_value
from specc.graph.ops import FUNCTIONS, OPERATORS, OPS
from specc.source import Span
from specc.suggest import did_you_mean

_ATTRIBUTES = {"T": "transpose"}


def is_graph_statement(x: s.Statement) -> bool:
    return isinstance(x, (s.GraphInput, s.GraphValue))


@dataclass
class _State:
    errors: list[Diagnostic] = field(default_factory=list)
    nodes: list[dict[str, Any]] = field(default_factory=list)
    defined: dict[str, s.GraphInput | s.GraphValue] = field(default_factory=dict)
    done: set[str] = field(default_factory=set)
    count: int = 0

    def error(self, message: str, span: Span | None, code: str, label: str = "", hint: str | None = None,
              notes: tuple[Label, ...] = ()) -> None:
        self.errors.append(Diagnostic(message, span, code, label, hint, notes))


def lower_graph(module: s.Module) -> tuple[dict[str, Any], list[Diagnostic]]:
    """The `graph` member of the IR and the errors found (the member is partial if there are any)."""
    st = _State()
    _not_both(st, module)
    inputs: list[dict[str, Any]] = []
    outputs = [x for x in module.statements if isinstance(x, s.GraphValue) and x.output]
    for x in module.statements:
        if not is_graph_statement(x):
            continue
        assert isinstance(x, (s.GraphInput, s.GraphValue))
        if x.name in st.defined:
            first = st.defined[x.name]
            st.error(f"'{x.name}' is defined twice", x.name_span, "duplicate-name", "defined again",
                     hint="give each input and value its own name",
                     notes=(Label(first.name_span, "first defined here"),))
            continue
        st.defined[x.name] = x
        if isinstance(x, s.GraphInput):
            value = input_value(st, x.value)
            if value is not None:
                inputs.append({"name": x.name, "value": value, "span": x.span.to_json(),
                               "name_span": x.name_span.to_json()})
            st.done.add(x.name)
    if not outputs:
        st.error("the graph has no output", None, "no-output",
                 hint="name the value to differentiate with `output`, e.g. `output z = t ** 2`")
    for extra in outputs[1:]:
        st.error("a second output; a graph has one", extra.span, "second-output", "another output",
                 hint="make all but one of them `let`", notes=(Label(outputs[0].name_span, "the output"),))
    for x in module.statements:
        if isinstance(x, s.GraphValue) and st.defined.get(x.name) is x:
            _define(st, x, ())
    graph = {"inputs": inputs, "nodes": st.nodes, "output": outputs[0].name if outputs else None}
    return graph, st.errors


def _not_both(st: _State, module: s.Module) -> None:
    """A file is a network (a chain of layers, trained) or a graph (values worked by hand), not both:
    `train` and `summary` would not know which one is meant."""
    first = next(x for x in module.statements if is_graph_statement(x))
    for x in module.statements:
        what = {s.NetworkDef: "a chain of layers", s.Input: "`input` with a shape",
                s.BlockDef: "a block definition", s.TrainDef: "a `train { }` section"}.get(type(x))
        if what is not None:
            st.error(f"{what} in a graph file; a file holds a network or a computational graph, not both",
                     x.span, "graph-and-network", "belongs to a network",
                     hint="put the graph (input NAME = ..., let, output) and the network in separate files",
                     notes=(Label(first.span, "the graph starts here"),))


# --- values and expressions -------------------------------------------------------------

def _define(st: _State, x: s.GraphValue, stack: tuple[str, ...]) -> None:
    """Lower a `let` after every value it uses (depth first, so definitions may come in any order)."""
    if x.name in st.done:
        return
    st.done.add(x.name)  # (a cycle back to it is reported where it closes)
    top = _expr(st, x.expr, stack + (x.name,))
    if top is None:
        return
    node = st.nodes[-1] if st.nodes and st.nodes[-1]["id"] == top else None
    if node is not None and node["id"].startswith("#") and not _is_const(node):
        node["id"] = x.name  # the expression's last operation is the named value
    else:  # `let a = b` or `let a = 2`: the value once more, under its name
        st.nodes.append({"id": x.name, "op": "identity", "operands": [top], "attrs": {},
                         "span": x.expr.span.to_json(), "operand_spans": [x.expr.span.to_json()]})
    st.nodes[-1]["name_span"] = x.name_span.to_json()


def _is_const(node: dict[str, Any]) -> bool:
    return node["op"] == "const"


def _new(st: _State, op: str, operands: list[str], spans: list[Span], span: Span,
         attrs: dict[str, Any] | None = None) -> str:
    st.count += 1
    nid = f"#{st.count}"
    st.nodes.append({"id": nid, "op": op, "operands": operands, "attrs": attrs or {}, "span": span.to_json(),
                     "operand_spans": [sp.to_json() for sp in spans]})
    return nid


def _constant(st: _State, value: int | float, span: Span) -> str:
    st.count += 1
    nid = f"#{st.count}"
    st.nodes.append({"id": nid, "op": "const", "value": value, "operands": [], "attrs": {}, "span": span.to_json()})
    return nid


def _number(e: s.Expr) -> int | float | None:
    """The value of a constant written as a number, or minus a number."""
    if isinstance(e, s.Number):
        return e.value
    if isinstance(e, s.Neg) and isinstance(e.operand, s.Number):
        return -e.operand.value
    return None


def _expr(st: _State, e: s.Expr, stack: tuple[str, ...]) -> str | None:
    """The id of the value of `e` (its nodes appended), or None after an error."""
    value = _number(e)
    if value is not None:
        return _constant(st, value, e.span)
    if isinstance(e, s.Ref):
        return _ref(st, e, stack)
    if isinstance(e, s.Neg):
        a = _expr(st, e.operand, stack)
        return None if a is None else _new(st, "neg", [a], [e.operand.span], e.span)
    if isinstance(e, s.BinOp):
        if e.op == "**":
            return _power(st, e, stack)
        a, b = _expr(st, e.left, stack), _expr(st, e.right, stack)
        if a is None or b is None:
            return None
        return _new(st, OPERATORS[e.op], [a, b], [e.left.span, e.right.span], e.span)
    if isinstance(e, s.Attribute):
        if e.name not in _ATTRIBUTES:
            st.error(f"unknown attribute '.{e.name}'", e.name_span, "unknown-attribute", "not an attribute",
                     hint="`.T` (the transpose) is the one attribute of a value")
            return None
        a = _expr(st, e.base, stack)
        return None if a is None else _new(st, _ATTRIBUTES[e.name], [a], [e.base.span], e.span)
    assert isinstance(e, s.Apply)
    return _apply(st, e, stack)


def _ref(st: _State, e: s.Ref, stack: tuple[str, ...]) -> str | None:
    target = st.defined.get(e.name)
    if target is None:
        hint = did_you_mean(e.name, st.defined)
        if e.name in FUNCTIONS:
            hint = f"'{e.name}' is a function: write `{e.name}(...)`"
        st.error(f"undefined name '{e.name}'", e.span, "undefined-name", "not defined",
                 hint=hint or "define it with `input NAME = value` or `let NAME = expression`")
        return None
    if e.name in stack:
        cycle = " -> ".join(stack[stack.index(e.name):] + (e.name,))
        st.error(f"'{e.name}' depends on itself ({cycle})", e.span, "cycle", "used here",
                 hint="a computational graph has no cycles: each value is computed from values before it",
                 notes=(Label(target.name_span, f"'{e.name}' is defined here"),))
        return None
    if isinstance(target, s.GraphValue):
        _define(st, target, stack)
        if not any(n["id"] == e.name for n in st.nodes):
            return None  # its definition failed (reported there)
    elif not isinstance(target, s.GraphInput):
        return None
    return e.name


def _power(st: _State, e: s.BinOp, stack: tuple[str, ...]) -> str | None:
    p = _number(e.right)
    if p is None:
        st.error("the exponent of ** must be a constant number", e.right.span, "non-constant-exponent",
                 "not a constant", hint="for a power with a variable exponent write `exp(b * log(a))`")
        return None
    a = _expr(st, e.left, stack)
    return None if a is None else _new(st, "pow", [a], [e.left.span], e.span, {"p": p})


def _apply(st: _State, e: s.Apply, stack: tuple[str, ...]) -> str | None:
    name = FUNCTIONS.get(e.func)
    if name is None:
        if e.func in st.defined:
            hint = f"'{e.func}' is a value, not a function; `*` multiplies"
        else:
            hint = did_you_mean(e.func, FUNCTIONS) or "functions: " + ", ".join(FUNCTIONS)
        st.error(f"unknown function '{e.func}'", e.name_span, "unknown-function", "not a function", hint=hint)
        return None
    op = OPS[name]
    wanted = op.arity + len(op.constants)
    if len(e.args) != wanted:
        takes = ", ".join(["a"] * op.arity + list(op.constants))
        st.error(f"{e.func} takes {wanted} argument{'s' * (wanted != 1)} ({e.func}({takes})), but "
                 f"{len(e.args)} {'was' if len(e.args) == 1 else 'were'} given", e.span, "bad-call",
                 hint=f"{e.func}({takes}): {', '.join(op.constants)} a constant number" if op.constants else None)
        return None
    attrs: dict[str, Any] = dict(op.keywords)
    for k in e.keywords:
        if k.key not in op.keywords:
            known = list(op.keywords)
            st.error(f"{e.func} has no argument '{k.key}'", k.key_span, "unknown-arg",
                     hint=did_you_mean(k.key, known) or (f"{e.func} takes {', '.join(known)}=" if known
                                                         else f"{e.func} takes no keyword arguments"))
            return None
        value = _number(k.value)
        if value is None:
            st.error(f"{e.func}: '{k.key}' must be a constant", k.value.span, "bad-arg", "not a constant")
            return None
        attrs[k.key] = value
    for cname, arg in zip(op.constants, e.args[op.arity:]):
        value = _number(arg)
        if value is None:
            st.error(f"{e.func}(a, {cname}): '{cname}' must be a constant number", arg.span, "non-constant",
                     "not a constant", hint=f"{e.func} against another value is not a primitive of graphs")
            return None
        attrs[cname] = value
    operands = [_expr(st, a, stack) for a in e.args[:op.arity]]
    if any(o is None for o in operands):
        return None
    return _new(st, name, [o for o in operands if o is not None], [a.span for a in e.args[:op.arity]], e.span,
                attrs)
