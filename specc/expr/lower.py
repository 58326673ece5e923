"""Lowering of `layer` definitions: each definition checked once where it is written, then instantiated
at every use with its arguments bound, as the `expression` member of that IR layer:

    {"type": "Dense", "args": {"n": 10}, "span": ..., "expression": {
        "definition": span, "name_span": span,
        "params": [{"name": "W", "shape": ["in", 10], "init": "he", "span": ..., "dim_spans": [...]}, ...],
        "nodes": [graph nodes, as in specc.graph.lower: operands are "x", parameters, "#k" and let names],
        "output": "y"}}

Arguments are constants: they are substituted into the expression (so `max(x, alpha)` is a constant
maximum) and into the parameters' shapes; `in`, the input's feature size (its first dimension), stays
symbolic until shapes are checked (specc.expr.derive). Shapes are not judged here.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Mapping

from specc import syntax as s
from specc.errors import Diagnostic, Label
from specc.graph import lower as graph_lower
from specc.source import Span
from specc.suggest import did_you_mean

INPUT = "x"  # the layer's input, in its expression
OUTPUT = "y"  # the value that is the layer's output
IN = "in"  # in a parameter's shape: the input's feature size (its first dimension per sample)
INITS = ("he", "xavier", "auto")  # random normal initial values, scaled by the parameter's fan-in
# The graph functions a layer cannot use: they reduce or transpose over the sample, whose batch axis the
# layer's expression does not see.
NOT_IN_LAYERS = ("sum", "mean", "softmax")


@dataclass(frozen=True)
class Definition:
    """A `layer` definition that passed its own checks, ready to be instantiated at each use."""

    syntax: s.LayerDef

    @property
    def name(self) -> str:
        return self.syntax.name


def _error(message: str, span: Span | None, code: str, label: str = "", hint: str | None = None,
           notes: tuple[Label, ...] = ()) -> Diagnostic:
    return Diagnostic(message, span, code, label, hint, notes)


def define(d: s.LayerDef) -> tuple[Definition | None, list[Diagnostic]]:
    """Check a definition alone (with every argument standing in as 1): names, the output, what is never
    used. Returns the definition (None if it has errors) and the diagnostics (warnings too)."""
    found: list[Diagnostic] = []
    outputs = [v for v in d.body if isinstance(v, s.GraphValue) and v.output]
    if not outputs:
        found.append(_error(f"layer '{d.name}' has no output", d.name_span, "no-output", "defined here",
                            hint="name the layer's output `y`, e.g. `y = x * sigmoid(x)`"))
    for v in d.body:
        if isinstance(v, s.GraphValue) and v.output and v.name != OUTPUT:
            found.append(_error(f"a layer's output is named '{OUTPUT}', not '{v.name}'", v.name_span, "bad-output",
                                "not y", hint=f"write `let {v.name} = ...` for a value on the way, "
                                              f"`{OUTPUT} = ...` for the output"))
    for extra in outputs[1:]:
        found.append(_error(f"layer '{d.name}' defines its output twice", extra.name_span, "second-output",
                            "defined again", notes=(Label(outputs[0].name_span, "first defined here"),)))
    args = {p.name for p in d.params}
    seen: dict[str, Span] = {INPUT: d.name_span}
    for p in d.params:
        if p.name == INPUT:
            found.append(_error(f"an argument of layer '{d.name}' is named '{INPUT}', the layer's input",
                                p.span, "duplicate-name", hint="give the argument another name"))
        if p.default is not None and not isinstance(p.default, s.Number):
            found.append(_error(f"the default of '{p.name}' must be a number", p.default.span, "bad-default",
                                "not a number", hint="an argument of an expression layer is a number"))
    for v in d.body:
        if isinstance(v, s.GraphValue) and v.output:
            continue
        if v.name in seen or v.name in args:
            what = "the layer's input" if v.name == INPUT else f"'{v.name}'"
            found.append(_error(f"{what} is defined twice in layer '{d.name}'", v.name_span, "duplicate-name",
                                "defined again", hint="give each parameter, argument and value its own name"))
        seen[v.name] = v.name_span
    for decl in (v for v in d.body if isinstance(v, s.ParamDecl)):
        for dim in decl.dims:
            if isinstance(dim.value, str) and dim.value != IN and dim.value not in args:
                found.append(_error(
                    f"the shape of parameter '{decl.name}' cannot be resolved: '{dim.value}' is neither `{IN}` "
                    f"nor an argument of {d.name}", dim.span, "unresolved-shape", "unknown size",
                    hint=did_you_mean(dim.value, [IN, *args]) or
                    f"a size is a number, `{IN}` (the input's feature size) or an argument: "
                    f"`layer {d.name}({dim.value}) {{ ... }}`"))
            elif isinstance(dim.value, (int, float)) and not (isinstance(dim.value, int) and dim.value >= 1):
                found.append(_error(f"a size of parameter '{decl.name}' must be a positive integer", dim.span,
                                    "bad-shape"))
        found += _init_errors(d, decl, args)
    if any(f.is_error for f in found):
        return None, found
    dummy = {p.name: (1, p.span) for p in d.params}
    expression, more = lower_expression(d, dummy)
    found += more
    used = _names_in(d)
    for p in d.params:
        if p.name not in used:
            found.append(Diagnostic(f"argument '{p.name}' of layer '{d.name}' is never used", p.span,
                                    "unused-param", "never used", hint="use it, or remove it",
                                    severity="warning"))
    if expression is None or any(f.is_error for f in found):
        return None, found
    return Definition(d), found


def _init_errors(d: s.LayerDef, p: s.ParamDecl, args: set[str]) -> list[Diagnostic]:
    init = p.init
    if isinstance(init, s.Number) or (isinstance(init, s.Name) and (init.name in INITS or init.name in args)):
        return []
    return [_error(f"parameter '{p.name}' starts from {_written(init)}, which is not an initial value",
                   init.span, "bad-init", "not an initial value",
                   hint="write a number (`= 0`), he, xavier, auto (random, by the fan-in) or an argument")]


def _written(v: s.Value) -> str:
    return f"'{v.name}'" if isinstance(v, (s.Name, s.Call)) else repr(getattr(v, "value", v))


def _names_in(d: s.LayerDef) -> set[str]:
    """Every name the body mentions (in expressions, shapes and initial values)."""
    out: set[str] = set()

    def walk(e: s.Expr) -> None:
        if isinstance(e, s.Ref):
            out.add(e.name)
        elif isinstance(e, s.BinOp):
            walk(e.left)
            walk(e.right)
        elif isinstance(e, s.Neg):
            walk(e.operand)
        elif isinstance(e, s.Attribute):
            walk(e.base)
        elif isinstance(e, s.Apply):
            for a in (*e.args, *(k.value for k in e.keywords)):
                walk(a)
    for v in d.body:
        if isinstance(v, s.GraphValue):
            walk(v.expr)
        else:
            out.update(dim.value for dim in v.dims if isinstance(dim.value, str))
            if isinstance(v.init, s.Name):
                out.add(v.init.name)
    return out


def _substitute(e: s.Expr, args: Mapping[str, tuple[Any, Span]]) -> s.Expr:
    """The expression with each argument replaced by its value (a constant, where the argument is used)."""
    if isinstance(e, s.Ref):
        return s.Number(args[e.name][0], e.span) if e.name in args else e
    if isinstance(e, s.BinOp):
        return replace(e, left=_substitute(e.left, args), right=_substitute(e.right, args))
    if isinstance(e, s.Neg):
        return replace(e, operand=_substitute(e.operand, args))
    if isinstance(e, s.Attribute):
        return replace(e, base=_substitute(e.base, args))
    if isinstance(e, s.Apply):
        return replace(e, args=tuple(_substitute(a, args) for a in e.args),
                       keywords=tuple(replace(k, value=_substitute(k.value, args)) for k in e.keywords))
    return e


def lower_expression(d: s.LayerDef, args: Mapping[str, tuple[Any, Span]]) -> tuple[dict | None, list[Diagnostic]]:
    """The `expression` member for these argument values (None after an error)."""
    st = graph_lower._State()
    st.defined[INPUT] = s.GraphInput(INPUT, s.Number(0), d.name_span, d.name_span)
    st.done.add(INPUT)
    params = [v for v in d.body if isinstance(v, s.ParamDecl)]
    values = [v for v in d.body if isinstance(v, s.GraphValue)]
    for p in params:
        st.defined[p.name] = s.GraphInput(p.name, s.Number(0), p.span, p.name_span)
        st.done.add(p.name)
    for v in values:
        st.defined.setdefault(v.name, replace(v, expr=_substitute(v.expr, args)))
    out = next((v for v in values if v.output), None)
    if out is None:
        return None, []
    before = len(st.errors)
    value = st.defined[out.name]
    assert isinstance(value, s.GraphValue)
    graph_lower._define(st, value, ())
    for e in st.errors[before:]:
        if e.code == "undefined-name" and e.hint and e.hint.startswith("define it with"):
            st.errors[st.errors.index(e)] = replace(
                e, hint=f"a layer's expression uses `{INPUT}` (its input), its parameters, its arguments and "
                        "its `let` values")
    errors = list(st.errors)
    reached = {o for n in st.nodes for o in n["operands"]}
    for n in st.nodes:
        if n["op"] in NOT_IN_LAYERS:
            errors.append(_error(f"{n['op']} is not available in a layer's expression", Span.from_json(n["span"]),
                                 "not-in-layer", "not in a layer",
                                 hint=f"a layer's expression works on one sample at a time; {n['op']} is for "
                                      "computational graphs (`specc grad`)"))
    if not errors and INPUT not in reached:
        errors.append(_error(f"layer '{d.name}' never uses its input '{INPUT}'", out.span, "unused-input",
                             "does not depend on x", hint=f"a layer computes its output from its input: use "
                                                          f"`{INPUT}` in the expression of `{OUTPUT}`"))
    for p in params:
        if not errors and p.name not in reached:
            errors.append(_error(f"parameter '{p.name}' of layer '{d.name}' is never used", p.name_span,
                                 "unused-param", "never used", hint="use it in the output's expression, or remove it"))
    for v in values:
        if not v.output and v.name not in st.done:
            errors.append(Diagnostic(f"the output of layer '{d.name}' does not use '{v.name}'", v.name_span,
                                     "unused-value", "never used", hint="use it, or remove the `let`",
                                     severity="warning"))
    if any(e.is_error for e in errors):
        return None, errors
    member = {"definition": d.span.to_json(), "name_span": d.name_span.to_json(),
              "params": [_param(p, args) for p in params], "nodes": st.nodes, "output": OUTPUT}
    return member, errors


def _param(p: s.ParamDecl, args: Mapping[str, tuple[Any, Span]]) -> dict[str, Any]:
    shape = [args[dim.value][0] if isinstance(dim.value, str) and dim.value in args else dim.value for dim in p.dims]
    init: Any = p.init.value if isinstance(p.init, s.Number) else None
    if isinstance(p.init, s.Name):
        init = args[p.init.name][0] if p.init.name in args else p.init.name
    return {"name": p.name, "shape": shape, "init": init, "span": p.span.to_json(),
            "dim_spans": [dim.span.to_json() for dim in p.dims]}


def instantiate(definition: Definition, args: Mapping[str, tuple[Any, Span]], call: s.Call
                ) -> tuple[dict | None, list[Diagnostic]]:
    """The `expression` member at one use: arguments must be numbers, sizes positive integers."""
    d = definition.syntax
    errors = []
    for name, (value, span) in args.items():
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            errors.append(_error(f"{d.name}: '{name}' expects a number, but received {value!r}", span, "bad-arg",
                                 hint="an argument of an expression layer is a number"))
    sizes = {dim.value: (p, dim) for p in d.body if isinstance(p, s.ParamDecl) for dim in p.dims
             if isinstance(dim.value, str) and dim.value in args}
    for name, (p, dim) in sizes.items():
        value, span = args[name]
        if isinstance(value, (int, float)) and not (isinstance(value, int) and not isinstance(value, bool)
                                                   and value >= 1):
            errors.append(_error(
                f"the shape of parameter '{p.name}' cannot be resolved: its size '{name}' is {value!r}, not a "
                "positive integer", span, "unresolved-shape", f"{name} = {value!r}",
                hint=f"{d.name}'s '{name}' is a size: pass a positive integer",
                notes=(Label(dim.span, f"'{name}' is a size of {p.name}"),)))
    if errors:
        return None, errors
    return lower_expression(d, args)
