"""Stage 2: syntax tree -> IR, a plain JSON-able dict (blocks and repetition expanded, defaults filled).

Lowering resolves names (layers, aliases, blocks, block parameters) and binds arguments to
their names; it does not judge argument values (the schema does) nor shapes (check does).
"""
from __future__ import annotations

from typing import Any

from specc import layers
from specc import syntax as s
from specc.errors import Diagnostic, Label
from specc.expand import INVALID, Lowering, argument_value, expand, names_a_parameter
from specc.expr import lower as expr_lower
from specc.graph.lower import is_graph_statement, lower_graph
from specc.training.optimizers import OPTIMIZERS, SCHEDULES, canonical

IR_VERSION = 1
MAX_LAYERS = 10_000  # a network expanding past this is refused before it is expanded


def lower(module: s.Module, source_name: str | None = None) -> tuple[dict[str, Any], list[Diagnostic]]:
    """Lower a parsed module. Returns the IR and every error found (the IR is partial if any)."""
    if any(is_graph_statement(x) for x in module.statements):  # a computational graph (specc.graph)
        graph, found = lower_graph(module)
        return {"version": IR_VERSION, **({"source": source_name} if source_name is not None else {}),
                "input": None, "layers": [], "graph": graph}, found
    st = Lowering()
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
                expanded = expand(st, chain, {}, [])
                # with a second chain, the first is not the network meant: nothing to infer
                ir["layers"] = expanded if len(networks) == 1 else []
        except RecursionError:
            st.error("blocks nest too deeply: a block uses a block that uses a block ... hundreds of levels down",
                     chain.span, "too-deep", hint="define fewer levels of blocks")
    if trains:
        ir["train"] = _lower_train(st, trains[0])
    return ir, st.errors


# --- blocks ---------------------------------------------------------------------------

def _define_layer(st: Lowering, d: s.LayerDef) -> None:
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


def _define_block(st: Lowering, b: s.BlockDef) -> None:
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
        if names_a_parameter(b, p):
            assert isinstance(p.default, s.Name)  # (what names_a_parameter checked)
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


def _names_used(item: s.Item | s.Value) -> set[str]:
    """Every name a block's body mentions: argument values, and calls (a parameter called as a layer)."""
    if isinstance(item, s.Chain):
        return {n for i in item.items for n in _names_used(i)}
    if isinstance(item, s.Repeat):
        return _names_used(item.body)
    if isinstance(item, s.Call):
        return {item.name} | {n for a in item.args for n in _names_used(a.value)}
    return {item.name} if isinstance(item, s.Name) else set()


def _count(st: Lowering, item: s.Item, stack: tuple[str, ...]) -> int:
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


# --- the train section ------------------------------------------------------------------

def _lower_train(st: Lowering, t: s.TrainDef) -> dict[str, Any]:
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
            value = argument_value(st, setting.value, {})
            if value is not INVALID:
                out[setting.key] = value
    out["span"] = t.span.to_json()
    out["key_spans"] = key_spans
    return out


def _lower_choice(st: Lowering, v: s.Value, table) -> dict[str, Any]:
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
        value = argument_value(st, a.value, {})
        if value is not INVALID:
            args[k], spans[k] = value, a.span.to_json()
    if spec:
        for arg in spec.signature:
            args.setdefault(arg.name, arg.default_for(args))
    return {"type": key or name, "args": args, "span": v.span.to_json(), "arg_spans": spans}
