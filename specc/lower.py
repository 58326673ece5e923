"""Stage 2: syntax tree -> IR, a plain JSON-able dict (blocks and repetition expanded, defaults filled).

Lowering resolves names (layers, aliases, blocks, block parameters) and binds arguments to
their names; it does not judge argument values (the schema does) nor shapes (check does).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from specc import layers
from specc import syntax as s
from specc.errors import Diagnostic, Label
from specc.expr import lower as expr_lower
from specc.graph.lower import is_graph_statement, lower_graph
from specc.source import Span
from specc.suggest import did_you_mean
from specc.text import value_text
from specc.training.optimizers import OPTIMIZERS, SCHEDULES, canonical

IR_VERSION = 1
MAX_LAYERS = 10_000  # a network expanding past this is refused before it is expanded

_BUILTIN_NAMES = {"true": True, "false": False}

# A value already reported as wrong (a call where a layer argument belongs); whatever holds it is
# left out of the IR, so that the schema does not report the same mistake a second time.
_INVALID: Any = type("_Invalid", (), {"__repr__": lambda self: "<invalid>"})()


@dataclass
class _Lowering:
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


def lower(module: s.Module, source_name: str | None = None) -> tuple[dict[str, Any], list[Diagnostic]]:
    """Lower a parsed module. Returns the IR and every error found (the IR is partial if any)."""
    if any(is_graph_statement(x) for x in module.statements):  # a computational graph (specc.graph)
        graph, found = lower_graph(module)
        return {"version": IR_VERSION, **({"source": source_name} if source_name is not None else {}),
                "input": None, "layers": [], "graph": graph}, found
    st = _Lowering()
    inputs = [x for x in module.statements if isinstance(x, s.Input)]
    trains = [x for x in module.statements if isinstance(x, s.TrainDef)]
    networks = [x for x in module.statements if isinstance(x, s.NetworkDef)]
    for x in module.statements:
        if isinstance(x, s.LayerDef):
            _define_layer(st, x)
    for x in module.statements:
        if isinstance(x, s.BlockDef):
            _define_block(st, x)
    for extra in inputs[1:]:
        st.error("the input is declared twice", extra.span, "duplicate-input", "second declaration",
                 notes=(Label(inputs[0].span, "first declared here"),))
    for extra_train in trains[1:]:
        st.error("a second `train { }` section", extra_train.span, "duplicate-train",
                 hint="put all training settings in one section",
                 notes=(Label(trains[0].span, "the first one"),))
    for extra_chain in networks[1:]:
        st.error("a second network chain starts here; a file holds one chain", extra_chain.chain.items[0].span,
                 "second-chain", "a new chain",
                 hint="to continue the chain above, join the two with '->'",
                 notes=(Label(networks[0].span, "the first chain"),))

    ir: dict[str, Any] = {"version": IR_VERSION}
    if source_name is not None:
        ir["source"] = source_name
    ir["input"] = ({"shape": list(inputs[0].dims), "span": inputs[0].span.to_json()} if inputs else None)
    ir["layers"] = []
    if not networks:
        st.error("the file defines no network", None, "empty",
                 hint="write a chain of layers, such as "
                      "`Affine(784, 50) -> ReLU -> Affine(50, 10) -> SoftmaxWithLoss`")
    else:
        chain = networks[0].chain
        try:
            total = _count(st, chain, ())
            if total > MAX_LAYERS:
                st.error(f"the network expands to {total:,} layers; the limit is {MAX_LAYERS:,}", chain.span,
                         "too-large", hint="lower the repetition counts (`* N`) or the nesting of blocks")
            elif not any(e.code == "recursive-block" for e in st.errors):
                expanded = _expand(st, chain, {}, [])
                # with a second chain, the first is not the network meant: nothing to infer
                ir["layers"] = expanded if len(networks) == 1 else []
        except RecursionError:
            st.error("blocks nest too deeply: a block uses a block that uses a block ... hundreds of levels down",
                     chain.span, "too-deep", hint="define fewer levels of blocks")
    if trains:
        ir["train"] = _lower_train(st, trains[0])
    return ir, st.errors


def placeholder(span: Span, written: str, kind: str | None = None) -> dict[str, Any]:
    """An IR layer that stands in for one whose mistake is already reported (an unknown layer, a
    block call that could not be bound, a layer with an unusable argument): checking steps over
    it, with the shape after it unknown. `kind` is the layer type when known (it may be the loss)."""
    return {"placeholder": True, "type": kind, "written": written, "span": span.to_json()}


# --- blocks ---------------------------------------------------------------------------

def _define_layer(st: _Lowering, d: s.LayerDef) -> None:
    """A layer written as an expression (specc.expr): checked once here, instantiated at each use."""
    if layers.lookup(d.name) is not None:
        st.error(f"layer '{d.name}' has the name of a built-in layer", d.name_span, "layer-shadows-layer",
                 hint=f"rename it, e.g. '{d.name}Expr' (`specc explain {d.name}` shows the built-in's own "
                      "expression)" if d.name in _explained() else f"rename it, e.g. '{d.name}Expr'")
        st.shadowed.add(d.name)
        return
    if d.name in st.layer_spans:
        st.error(f"layer '{d.name}' is defined twice", d.name_span, "duplicate-layer",
                 notes=(Label(st.layer_spans[d.name], "first defined here"),))
        return
    definition, found = expr_lower.define(d)
    st.errors += found
    st.layer_defs[d.name], st.layer_spans[d.name] = definition, d.name_span


def _explained() -> set[str]:
    from specc.expr.prelude import names
    return set(names())


def _define_block(st: _Lowering, b: s.BlockDef) -> None:
    if b.name in st.layer_defs:
        st.error(f"block '{b.name}' has the name of a layer defined above", b.name_span, "block-shadows-layer",
                 hint=f"rename the block, e.g. '{b.name}Block'")
        st.shadowed.add(b.name)
        return
    if layers.lookup(b.name) is not None:
        st.error(f"block '{b.name}' has the name of a built-in layer", b.name_span, "block-shadows-layer",
                 hint=f"rename the block, e.g. '{b.name}Block'")
        st.shadowed.add(b.name)  # its calls meant the block: they stand as placeholders
        return
    if b.name in st.blocks:
        st.error(f"block '{b.name}' is defined twice", b.name_span, "duplicate-block",
                 notes=(Label(st.blocks[b.name].name_span, "first defined here"),))
        return
    seen: dict[str, s.BlockParam] = {}
    for p in b.params:
        if p.name in seen:
            st.error(f"block '{b.name}' has two parameters named '{p.name}'", p.span, "duplicate-param")
        seen[p.name] = p
    for p in b.params:
        if _names_a_parameter(b, p):
            assert isinstance(p.default, s.Name)  # (what _names_a_parameter checked)
            other = "itself" if p.default.name == p.name else f"the parameter '{p.default.name}'"
            st.error(f"the default of '{p.name}' names {other}; a default is a constant and cannot refer to "
                     f"a parameter", p.default.span, "default-names-param", "not a constant",
                     hint=f"write a constant (`{p.name}=10`), or drop the default and pass '{p.name}' "
                          f"with each call of {b.name}")
    # (a parameter named by another's default is meant to be used; that default is the error to report)
    used = _names_used(b.body) | {p.default.name for p in b.params if isinstance(p.default, s.Name)}
    for p in b.params:
        if p.name not in used:
            st.warn(f"block parameter '{p.name}' is never used", p.span, "unused-param", "never used",
                    hint="pass it to a layer in the block, or remove it")
    st.blocks[b.name] = b


def _names_a_parameter(b: s.BlockDef | s.LayerDef, p: s.BlockParam) -> bool:
    """`block D(n, m=n)`: a default is evaluated once, where the block is defined, not per call."""
    return isinstance(p.default, s.Name) and p.default.name in {q.name for q in b.params}


def _names_used(item: s.Item | s.Value) -> set[str]:
    """Every name a block's body mentions: argument values, and calls (a parameter called as a layer)."""
    if isinstance(item, s.Chain):
        return {n for i in item.items for n in _names_used(i)}
    if isinstance(item, s.Repeat):
        return _names_used(item.body)
    if isinstance(item, s.Call):
        return {item.name} | {n for a in item.args for n in _names_used(a.value)}
    return {item.name} if isinstance(item, s.Name) else set()


def _count(st: _Lowering, item: s.Item, stack: tuple[str, ...]) -> int:
    """How many layers `item` expands to, found without expanding; reports recursive blocks."""
    if isinstance(item, s.Chain):
        return sum(_count(st, i, stack) for i in item.items)
    if isinstance(item, s.Repeat):
        n = item.count.value
        body = _count(st, item.body, stack)
        return body * n if isinstance(n, int) and n > 0 else body
    block = st.blocks.get(item.name)
    if block is None:
        return 1
    if item.name in stack:
        cycle = " -> ".join(stack[stack.index(item.name):] + (item.name,))
        st.error(f"block '{item.name}' uses itself ({cycle}); blocks cannot be recursive", item.span,
                 "recursive-block", "recursive use",
                 notes=(Label(block.name_span, f"'{item.name}' is defined here"),))
        return 0
    return _count(st, block.body, stack + (item.name,))


# --- expansion ------------------------------------------------------------------------

Env = dict[str, tuple[Any, Span]]  # block parameter -> (value, where the value was written)


def _expand(st: _Lowering, item: s.Item, env: Env, origin: list[dict]) -> list[dict]:
    if isinstance(item, s.Chain):
        return [layer for i in item.items for layer in _expand(st, i, env, origin)]
    if isinstance(item, s.Repeat):
        n = item.count.value
        if not isinstance(n, int) or n < 1:
            # `* 2.0` means 2, but in a .net file an integer is written as one (see README, The language)
            hint = (f"write `* {int(n)}`: in a .net file an integer is written without a decimal point"
                    if isinstance(n, float) and n.is_integer() and n >= 1
                    else "write `Layer * 3` to repeat a layer three times")
            st.error(f"a repetition count must be a positive integer, not {value_text(n)}", item.count.span,
                     "bad-repeat", hint=hint)
            return _expand(st, item.body, env, origin)
        out = []
        for k in range(n):
            here = {"repeat": k + 1, "of": n, "call": item.span.to_json()}
            out += _expand(st, item.body, env, origin + [here])
        return out
    return _expand_call(st, item, env, origin)


def _expand_call(st: _Lowering, call: s.Call, env: Env, origin: list[dict]) -> list[dict]:
    if call.name in st.shadowed:
        return [placeholder(call.span, call.name)]
    block = st.blocks.get(call.name)
    if block is not None:
        inner = _bind_block(st, block, call, env)
        if inner is None:
            return [placeholder(call.span, call.name)]
        here = {"block": block.name, "call": call.span.to_json(), "definition": block.span.to_json()}
        return _expand(st, block.body, inner, origin + [here])
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


def _layer(st: _Lowering, cls: type[layers.Layer], call: s.Call, env: Env, origin: list[dict]) -> dict | None:
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
        args[name], spans[name] = _value(st, a.value, env), _where(a, env)
    for a in call.args:
        if a.key is None:
            continue
        if a.key in args:
            st.error(f"argument '{a.key}' of {cls.name} is given twice", a.span, "duplicate-arg",
                     notes=(Label(spans[a.key], "first given here"),))
            continue
        args[a.key], spans[a.key] = _value(st, a.value, env), _where(a, env)
    if any(v is _INVALID for v in args.values()):
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


def _expression_layer(st: _Lowering, call: s.Call, env: Env, origin: list[dict]) -> dict:
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


def _bind_block(st: _Lowering, block: s.BlockDef | s.LayerDef, call: s.Call, env: Env,
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
        inner[name] = (_value(st, a.value, env), _value_span(a.value, env))
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
            inner[a.key] = (_value(st, a.value, env), _value_span(a.value, env))
    misspelt = [a.key for a in call.args if a.key is not None and a.key not in params]
    for p in block.params:
        if p.name not in inner:
            if p.default is None and any(did_you_mean(k, [p.name]) for k in misspelt):
                ok = False  # `D(nn=1)` is reported above, with 'n' suggested
            elif _names_a_parameter(block, p):
                ok = False  # reported where the block is defined
            elif p.default is None:
                st.error(f"{signature} needs a value for '{p.name}'", call.span, "missing-arg",
                         hint=f"write `{block.name}({', '.join(params)})` with a value for each",
                         notes=(Label(block.name_span, "defined here"),))
                ok = False
            else:
                inner[p.name] = (_value(st, p.default, {}), p.default.span)
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


def _value(st: _Lowering, v: s.Value, env: Env) -> Any:
    if isinstance(v, (s.Number, s.String)):
        return v.value
    if isinstance(v, s.Name):
        if v.name in env:
            return env[v.name][0]
        return _BUILTIN_NAMES.get(v.name, v.name)
    st.error(f"'{v.name}(...)' is a call, but a number, a name or a string is expected here", v.span,
             "bad-value")
    return _INVALID


# --- the train section ------------------------------------------------------------------

def _lower_train(st: _Lowering, t: s.TrainDef) -> dict[str, Any]:
    out: dict[str, Any] = {}
    key_spans: dict[str, dict] = {}
    seen: dict[str, s.SettingDef] = {}
    for setting in t.settings:
        if setting.key in seen:
            st.error(f"train setting '{setting.key}' is set twice", setting.span, "duplicate-setting",
                     notes=(Label(seen[setting.key].span, "first set here"),))
            continue
        seen[setting.key] = setting
        key_spans[setting.key] = setting.span.to_json()
        if setting.key == "optimizer":
            out["optimizer"] = _lower_choice(st, setting.value, OPTIMIZERS)
        elif setting.key == "schedule":
            out["schedule"] = _lower_choice(st, setting.value, SCHEDULES)
        else:
            value = _value(st, setting.value, {})
            if value is not _INVALID:
                out[setting.key] = value
    out["span"] = t.span.to_json()
    out["key_spans"] = key_spans
    return out


def _lower_choice(st: _Lowering, v: s.Value, table) -> dict[str, Any]:
    """`Adam`, `"adam"` or `Adam(lr=0.1)` -> {"type": "Adam", "args": {...}} with defaults filled."""
    if isinstance(v, s.Call):
        name, call_args = v.name, v.args
    elif isinstance(v, (s.Name, s.String)):
        name, call_args = (v.name if isinstance(v, s.Name) else v.value), ()
    else:
        return {"type": v.value, "args": {}, "span": v.span.to_json(), "arg_spans": {}}
    key = canonical(table, name)
    spec = table.get(key) if key else None
    args: dict[str, Any] = {}
    spans: dict[str, dict] = {}
    names = [a.name for a in spec.signature] if spec else []
    for i, a in enumerate(call_args):
        k = a.key if a.key is not None else (names[i] if i < len(names) else f"#{i + 1}")
        value = _value(st, a.value, {})
        if value is not _INVALID:
            args[k], spans[k] = value, a.span.to_json()
    if spec:
        for arg in spec.signature:
            args.setdefault(arg.name, arg.default_for(args))
    return {"type": key or name, "args": args, "span": v.span.to_json(), "arg_spans": spans}
