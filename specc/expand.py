"""Expansion, the heart of lowering (specc.lower): blocks bound to their arguments and repetitions
unrolled into IR layers, each argument bound to its name, with where its value was written."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from specc import layers
from specc import syntax as s
from specc.errors import Diagnostic, Label
from specc.expr import lower as expr_lower
from specc.source import Span
from specc.suggest import did_you_mean
from specc.text import value_text

_BUILTIN_NAMES = {"true": True, "false": False}

# A value already reported as wrong (a call where a layer argument belongs); whatever holds it is
# left out of the IR, so that the schema does not report the same mistake a second time.
INVALID: Any = type("_Invalid", (), {"__repr__": lambda self: "<invalid>"})()


@dataclass
class Lowering:
    """One module's lowering so far: its blocks and `layer` definitions, and what it has reported."""

    blocks: dict[str, s.BlockDef] = field(default_factory=dict)
    shadowed: set[str] = field(default_factory=set)  # blocks refused for a built-in layer's name
    # `layer` definitions by name; None for one whose errors are reported (its uses stand as placeholders)
    layer_defs: dict[str, expr_lower.Definition | None] = field(default_factory=dict)
    layer_spans: dict[str, Span] = field(default_factory=dict)  # where each was defined first
    errors: list[Diagnostic] = field(default_factory=list)  # and warnings (Diagnostic.severity)

    def error(self, message: str, span: Span | None, code: str, label: str = "", hint: str | None = None,
              notes: tuple[Label, ...] = ()) -> None:
        self.errors.append(Diagnostic(message, span, code, label, hint, notes))

    def warn(self, message: str, span: Span | None, code: str, label: str = "", hint: str | None = None) -> None:
        self.errors.append(Diagnostic(message, span, code, label, hint, severity="warning"))


def placeholder(span: Span, written: str, kind: str | None = None) -> dict[str, Any]:
    """An IR layer that stands in for one whose mistake is already reported (an unknown layer, a
    block call that could not be bound, a layer with an unusable argument): checking steps over
    it, with the shape after it unknown. `kind` is the layer type when known (it may be the loss)."""
    return {"placeholder": True, "type": kind, "written": written, "span": span.to_json()}


def names_a_parameter(b: s.BlockDef | s.LayerDef, p: s.BlockParam) -> bool:
    """`block D(n, m=n)`: a default is evaluated once, where the block is defined, not per call."""
    return isinstance(p.default, s.Name) and p.default.name in {q.name for q in b.params}


Env = dict[str, tuple[Any, Span]]  # block parameter -> (value, where the value was written)


def expand(st: Lowering, item: s.Item, env: Env, origin: list[dict]) -> list[dict]:
    if isinstance(item, s.Chain):
        return [layer for i in item.items for layer in expand(st, i, env, origin)]
    if isinstance(item, s.Repeat):
        n = item.count.value
        if not isinstance(n, int) or n < 1:
            # `* 2.0` means 2, but in a .net file an integer is written as one (see README, The language)
            hint = (f"write `* {int(n)}`: in a .net file an integer is written without a decimal point"
                    if isinstance(n, float) and n.is_integer() and n >= 1
                    else "write `Layer * 3` to repeat a layer three times")
            st.error(f"a repetition count must be a positive integer, not {value_text(n)}", item.count.span,
                     "bad-repeat", hint=hint)
            return expand(st, item.body, env, origin)
        out = []
        for k in range(n):
            here = {"repeat": k + 1, "of": n, "call": item.span.to_json()}
            out += expand(st, item.body, env, origin + [here])
        return out
    return _expand_call(st, item, env, origin)


def _expand_call(st: Lowering, call: s.Call, env: Env, origin: list[dict]) -> list[dict]:
    if call.name in st.shadowed:
        return [placeholder(call.span, call.name)]
    block = st.blocks.get(call.name)
    if block is not None:
        inner = _bind_block(st, block, call, env)
        if inner is None:
            return [placeholder(call.span, call.name)]
        here = {"block": block.name, "call": call.span.to_json(), "definition": block.span.to_json()}
        return expand(st, block.body, inner, origin + [here])
    if call.name in st.layer_defs:
        return [_expression_layer(st, call, env, origin)]
    cls = layers.lookup(call.name)
    if cls is None:
        if call.name in env:
            st.error(f"'{call.name}' is a parameter of the block, not a layer", call.name_span, "not-a-layer")
        else:
            hint = (layers.foreign_hint(call.name)
                    or did_you_mean(call.name, [*layers.names(), *st.blocks, *st.layer_defs], layers.ALIASES)
                    or f"`specc schema` lists every layer; a block is defined with `block {call.name}(...) = ...`")
            st.error(f"unknown layer '{call.name}'", call.name_span, "unknown-layer",
                     "not a layer or block", hint=hint)
        return [placeholder(call.span, call.name)]
    layer = _layer(st, cls, call, env, origin)
    return [layer] if layer is not None else [placeholder(call.span, call.name, cls.name)]


def _were(n: int) -> str:
    return f"{n} {'was' if n == 1 else 'were'} given"


def _layer(st: Lowering, cls: type[layers.Layer], call: s.Call, env: Env, origin: list[dict]) -> dict | None:
    args: dict[str, Any] = {}
    spans: dict[str, Span] = {}
    positional = [a for a in call.args if a.key is None]
    names = cls.positional_names(len(positional)) if positional else ()
    if names is None:
        most = cls.max_positional()
        extra = positional[len(most)] if len(positional) > len(most) else positional[-1]
        takes = (f"takes at most {len(most)} positional argument{'s' * (len(most) != 1)} ({', '.join(most)})"
                 if most else "takes no arguments")
        st.error(f"{cls.name} {takes}, but {_were(len(positional))}",
                 extra.span, "too-many-args", "extra argument",
                 hint=f"name the arguments, e.g. `{cls.name}({', '.join(f'{n}=...' for n in most[:2])})`"
                 if most else f"write `{cls.name}` without parentheses")
        names = most
    for name, a in zip(names, positional):
        args[name], spans[name] = argument_value(st, a.value, env), _where(a, env)
    for a in call.args:
        if a.key is None:
            continue
        if a.key in args:
            st.error(f"argument '{a.key}' of {cls.name} is given twice", a.span, "duplicate-arg",
                     notes=(Label(spans[a.key], "first given here"),))
            continue
        args[a.key], spans[a.key] = argument_value(st, a.value, env), _where(a, env)
    if any(v is INVALID for v in args.values()):
        return None
    for arg in cls.signature:
        if arg.name not in args and not arg.required:
            args[arg.name] = arg.default_for(args)
    order = [a.name for a in cls.signature]
    args = dict(sorted(args.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order)))
    layer: dict[str, Any] = {"type": cls.name, "args": args, "span": call.span.to_json(),
                             "arg_spans": {k: v.to_json() for k, v in spans.items()}}
    if call.name != cls.name:
        layer["written"] = call.name
    if origin:
        layer["origin"] = origin
    return layer


def _expression_layer(st: Lowering, call: s.Call, env: Env, origin: list[dict]) -> dict:
    """The IR layer of a use of a `layer` definition: its arguments bound, its expression instantiated."""
    definition = st.layer_defs[call.name]
    if definition is None:
        return placeholder(call.span, call.name)
    bound = _bind_block(st, definition.syntax, call, env, kind="layer")
    if bound is None:
        return placeholder(call.span, call.name)
    expression, found = expr_lower.instantiate(definition, bound, call)
    st.errors += found
    if expression is None:
        return placeholder(call.span, call.name)
    order = [p.name for p in definition.syntax.params]
    layer: dict[str, Any] = {"type": call.name, "args": {k: bound[k][0] for k in order},
                             "span": call.span.to_json(),
                             "arg_spans": {k: bound[k][1].to_json() for k in order},
                             "expression": expression}
    if origin:
        layer["origin"] = origin
    return layer


def _bind_block(st: Lowering, block: s.BlockDef | s.LayerDef, call: s.Call, env: Env,
                kind: str = "block") -> Env | None:
    """The values of a block's (or expression layer's) parameters at one call, defaults filled in."""
    inner: Env = {}
    params = [p.name for p in block.params]
    positional = [a for a in call.args if a.key is None]
    signature = f"{kind} {block.name}({', '.join(params)})"
    ok = True
    if len(positional) > len(params):
        st.error(f"{signature} takes {len(params)} argument{'s' * (len(params) != 1)}, "
                 f"but {_were(len(positional))}", positional[len(params)].span, "too-many-args",
                 notes=(Label(block.name_span, "defined here"),))
        ok = False
    for name, a in zip(params, positional):
        inner[name] = (argument_value(st, a.value, env), _value_span(a.value, env))
    for a in call.args:
        if a.key is None:
            continue
        if a.key not in params:
            st.error(f"{signature} has no parameter '{a.key}'", a.key_span, "unknown-arg",
                     hint=did_you_mean(a.key, params), notes=(Label(block.name_span, "defined here"),))
            ok = False
        elif a.key in inner:
            st.error(f"parameter '{a.key}' of {kind} {block.name} is given twice", a.span, "duplicate-arg")
            ok = False
        else:
            inner[a.key] = (argument_value(st, a.value, env), _value_span(a.value, env))
    misspelt = [a.key for a in call.args if a.key is not None and a.key not in params]
    for p in block.params:
        if p.name not in inner:
            if p.default is None and any(did_you_mean(k, [p.name]) for k in misspelt):
                ok = False  # `D(nn=1)` is reported above, with 'n' suggested
            elif names_a_parameter(block, p):
                ok = False  # reported where the block is defined
            elif p.default is None:
                st.error(f"{signature} needs a value for '{p.name}'", call.span, "missing-arg",
                         hint=f"write `{block.name}({', '.join(params)})` with a value for each",
                         notes=(Label(block.name_span, "defined here"),))
                ok = False
            else:
                inner[p.name] = (argument_value(st, p.default, {}), p.default.span)
    return inner if ok else None


def _where(a: s.Arg, env: Env) -> Span:
    """Where an argument's value was written: at the block's call site if it is a block parameter."""
    if isinstance(a.value, s.Name) and a.value.name in env:
        return env[a.value.name][1]
    return a.span


def _value_span(v: s.Value, env: Env) -> Span:
    """Where a value passed to a block was written: a parameter of an enclosing block passed on
    (`Inner(n)` inside `Outer(n)`) was written where Outer was called."""
    if isinstance(v, s.Name) and v.name in env:
        return env[v.name][1]
    return v.span


def argument_value(st: Lowering, v: s.Value, env: Env) -> Any:
    if isinstance(v, (s.Number, s.String)):
        return v.value
    if isinstance(v, s.Name):
        if v.name in env:
            return env[v.name][0]
        return _BUILTIN_NAMES.get(v.name, v.name)
    st.error(f"'{v.name}(...)' is a call, but a number, a name or a string is expected here", v.span,
             "bad-value")
    return INVALID
