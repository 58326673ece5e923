"""The IR as typed values: frozen dataclasses made from a validated IR document, and back.

The IR document (version 1) is what `specc compile --emit json` prints and what a `.json`
spec file holds; its JSON Schema is grammar/ir.schema.json (see specc.schema).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from specc import layers
from specc.layers.args import Arg
from specc.source import Span
from specc.training.optimizers import OPTIMIZERS, SCHEDULES
from specc.training.section import SETTINGS


def _span(d: Mapping | None) -> Span | None:
    return Span.from_json(d) if d else None


@dataclass(frozen=True)
class Origin:
    """One step of how a layer came to be: a block call, or one copy of a repetition."""

    call: Span | None
    block: str | None = None
    definition: Span | None = None
    repeat: int | None = None
    of: int | None = None


@dataclass(frozen=True)
class CallSpec:
    """A layer, an optimizer or a schedule with its arguments (defaults filled in)."""

    type: str
    args: Mapping[str, Any]
    span: Span | None = None
    arg_spans: Mapping[str, Span] = field(default_factory=dict)
    origin: tuple[Origin, ...] = ()
    written: str | None = None  # the alias the user wrote, if any
    # a layer written as an expression in the file (specc.expr): its `expression` member, as in the IR
    expression: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Placeholder:
    """Where a layer was meant but its mistake is already reported (unknown, unbound, invalid):
    checking steps over it with the shape after it unknown; it may be the loss when its type is known."""

    type: str | None
    span: Span | None = None
    written: str | None = None


@dataclass(frozen=True)
class Train:
    """The `train { }` section as written (flags and defaults are applied when training)."""

    settings: Mapping[str, Any]  # optimizer and schedule are Calls
    span: Span | None = None
    key_spans: Mapping[str, Span] = field(default_factory=dict)


@dataclass(frozen=True)
class NetworkSpec:
    version: int
    layers: tuple[CallSpec | Placeholder, ...]
    input_shape: tuple[int, ...] | None = None
    input_span: Span | None = None
    train: Train | None = None
    source: str | None = None


def _integers(values: Mapping[str, Any], schemas: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """JSON has one number type: a .json IR file may write 5.0 where an integer is expected (a .net
    file may not; see specc.schema), and the network, config.json and the generated code get 5."""
    return {k: int(v) if schemas.get(k, {}).get("type") == "integer" and isinstance(v, float) and v.is_integer()
            else v for k, v in values.items()}


def _signature(kind: str, name: str) -> Iterable[Arg]:
    """The arguments of a layer, optimizer or schedule called `name` (none if it is unknown)."""
    if kind == "optimizer":
        return OPTIMIZERS[name].signature if name in OPTIMIZERS else ()
    if kind == "schedule":
        return SCHEDULES[name].signature if name in SCHEDULES else ()
    cls = layers.lookup(name)
    return cls.signature if cls is not None else ()


def _call(d: Mapping[str, Any], kind: str = "layer") -> CallSpec:
    args = _integers(d.get("args", {}), {a.name: a.schema for a in _signature(kind, d["type"])})
    origin = tuple(Origin(_span(o.get("call")), o.get("block"), _span(o.get("definition")),
                          o.get("repeat"), o.get("of")) for o in d.get("origin", ()))
    return CallSpec(d["type"], args, _span(d.get("span")),
                    {k: Span.from_json(v) for k, v in d.get("arg_spans", {}).items()}, origin, d.get("written"),
                    d.get("expression"))


def from_json(doc: Mapping[str, Any], invalid: frozenset[int] = frozenset(),
              invalid_settings: frozenset[str] = frozenset()) -> NetworkSpec:
    """Typed network from an IR document. Its layers must be schema-valid, except the `invalid`
    ones and the placeholders lowering left, which become Placeholders; `invalid_settings` of the
    train section are left out."""
    train = None
    if doc.get("train") is not None:
        t = doc["train"]
        settings = {k: (_call(v, k) if k in ("optimizer", "schedule") else v)
                    for k, v in t.items() if k not in ("span", "key_spans") and k not in invalid_settings}
        settings = _integers(settings, {k: st.schema for k, st in SETTINGS.items()})
        spans = t.get("key_spans") if "key_spans" not in invalid_settings else None
        train = Train(settings, None if "span" in invalid_settings else _span(t.get("span")),
                      {k: Span.from_json(v) for k, v in spans.items()} if isinstance(spans, dict) else {})
    inp = doc.get("input")
    return NetworkSpec(doc["version"], tuple(_layer(i, layer, invalid) for i, layer in enumerate(doc["layers"])),
                   tuple(int(x) for x in inp["shape"]) if inp else None,
                   _span(inp.get("span")) if inp else None, train, doc.get("source"))


def _layer(i: int, d: Any, invalid: frozenset[int]) -> CallSpec | Placeholder:
    if isinstance(d, dict) and (i in invalid or d.get("placeholder")):
        kind = d.get("type")
        written = d.get("written")
        return Placeholder(kind if isinstance(kind, str) and layers.lookup(kind) else None,
                           _safe_span(d.get("span")), written if isinstance(written, str) else None)
    if i in invalid:  # a .json file may hold anything where a layer belongs
        return Placeholder(None)
    return _call(d)


def _safe_span(d: Any) -> Span | None:
    try:
        return Span.from_json(d) if d else None
    except (KeyError, TypeError):
        return None


def _call_json(c: CallSpec) -> dict[str, Any]:
    d: dict[str, Any] = {"type": c.type, "args": dict(c.args)}
    if c.span:
        d["span"] = c.span.to_json()
    d["arg_spans"] = {k: v.to_json() for k, v in c.arg_spans.items()}
    if c.written:
        d["written"] = c.written
    if c.expression is not None:
        d["expression"] = c.expression
    if c.origin:
        d["origin"] = [{k: (v.to_json() if isinstance(v, Span) else v) for k, v in
                        (("repeat", o.repeat), ("of", o.of), ("block", o.block), ("call", o.call),
                         ("definition", o.definition)) if v is not None} for o in c.origin]
    return d


def to_json(net: NetworkSpec) -> dict[str, Any]:
    """The IR document of a typed network (inverse of from_json)."""
    doc: dict[str, Any] = {"version": net.version}
    if net.source is not None:
        doc["source"] = net.source
    doc["input"] = None if net.input_shape is None else {
        "shape": list(net.input_shape), **({"span": net.input_span.to_json()} if net.input_span else {})}
    doc["layers"] = [_call_json(c) for c in net.layers if isinstance(c, CallSpec)]
    if net.train is not None:
        t = {k: (_call_json(v) if isinstance(v, CallSpec) else v) for k, v in net.train.settings.items()}
        if net.train.span:
            t["span"] = net.train.span.to_json()
        t["key_spans"] = {k: v.to_json() for k, v in net.train.key_spans.items()}
        doc["train"] = t
    return doc
