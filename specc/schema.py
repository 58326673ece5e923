"""Stage 3: the JSON Schema of the IR (assembled from the registries) and validation against it
(its errors put into words by specc.schema_errors).

The schema file shipped beside the grammar (grammar/ir.schema.json) is what validation uses;
a test checks that it equals the schema assembled here, so a layer is still added in one place
(`specc schema > grammar/ir.schema.json` refreshes the file).
"""
from __future__ import annotations

import json
from dataclasses import replace
from functools import cache
from typing import Any, Iterable

import jsonschema

from specc import layers
from specc.errors import Diagnostic
from specc.expr.schema import expression_defs
from specc.graph.schema import graph_defs
from specc.layers.args import Arg
from specc.resources import grammar_dir
from specc.schema_errors import explain
from specc.training.optimizers import OPTIMIZERS, SCHEDULES
from specc.training.section import SETTINGS

SCHEMA_FILE = "ir.schema.json"
_SPAN = {"$ref": "#/$defs/span"}


def _args_schema(signature: Iterable[Arg], doc: str) -> dict[str, Any]:
    props = {}
    for a in signature:
        schema = dict(a.schema)
        if a.nullable:
            schema = {"anyOf": [schema, {"type": "null"}]}
        props[a.name] = {"description": a.doc or a.expects, **schema}
    required = [a.name for a in signature]  # IR arguments are complete: defaults are filled in
    return {"description": doc, "type": "object", "properties": props, "required": required,
            "additionalProperties": False}


def _dispatch(kinds: Iterable[str], ref_prefix: str) -> list[dict[str, Any]]:
    return [{"if": {"properties": {"type": {"const": name}}},
             "then": {"properties": {"args": {"$ref": f"#/$defs/{ref_prefix}{name}"}}}} for name in kinds]


def _call_schema(names: list[str], ref_prefix: str, doc: str, extra: dict | None = None) -> dict[str, Any]:
    return {
        "description": doc, "type": "object", "required": ["type", "args"],
        "properties": {"type": {"enum": names}, "args": {"type": "object"}, "span": _SPAN,
                       "arg_spans": {"type": "object", "additionalProperties": _SPAN}, **(extra or {})},
        "additionalProperties": False,
        "allOf": _dispatch(dict.fromkeys(names), ref_prefix),
    }


def _layer_schema() -> dict[str, Any]:
    """A built-in layer by name, or a layer written as an expression (its type is then the name the
    file gave it, and its arguments are numbers)."""
    layer = _call_schema(list(layers.REGISTRY), "layer.", "one layer, its arguments complete",
                         {"written": {"type": "string", "description": "the alias the source used"},
                          "origin": {"type": "array", "items": {"$ref": "#/$defs/origin"}},
                          "expression": {"$ref": "#/$defs/expression"}})
    names = layer["properties"]["type"]
    layer["properties"]["type"] = {"type": "string"}
    layer["allOf"].append({
        "if": {"required": ["expression"]},
        "then": {"properties": {"type": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
                                "args": {"additionalProperties": {"type": "number"}}}},
        "else": {"properties": {"type": names}}})
    return layer


def build_schema() -> dict[str, Any]:
    """The IR schema, draft 2020-12, from the layer, optimizer and train-setting declarations."""
    defs: dict[str, Any] = {
        "span": {"description": "1-based line and column in the .net source; end column exclusive",
                 "type": "object", "required": ["line", "col", "end_line", "end_col"],
                 "properties": {k: {"type": "integer", "minimum": 0}
                                for k in ("line", "col", "end_line", "end_col")},
                 "additionalProperties": False},
        "origin": {"description": "a block call or one copy of `item * N` that this layer comes from",
                   "type": "object",
                   "properties": {"block": {"type": "string"}, "call": _SPAN, "definition": _SPAN,
                                  "repeat": {"type": "integer", "minimum": 1},
                                  "of": {"type": "integer", "minimum": 1}},
                   "additionalProperties": False},
        "layer": _layer_schema(),
        "optimizer": _call_schema(list(OPTIMIZERS), "optimizer.", "an optimizer and its arguments"),
        "schedule": _call_schema(list(SCHEDULES), "schedule.", "a learning-rate schedule"),
    }
    for name, cls in layers.REGISTRY.items():
        defs[f"layer.{name}"] = _args_schema(cls.signature, cls.doc)
    for table, prefix in ((OPTIMIZERS, "optimizer."), (SCHEDULES, "schedule.")):
        for name, spec in table.items():
            defs[f"{prefix}{name}"] = _args_schema(spec.signature, spec.doc)
    train_props = {k: {"description": st.doc, **st.schema} for k, st in SETTINGS.items()}
    train_props["span"] = _SPAN
    train_props["key_spans"] = {"type": "object", "additionalProperties": _SPAN}
    defs.update(graph_defs())
    defs.update(expression_defs())
    defs["train"] = {"description": "the train { } section as written", "type": "object",
                     "properties": train_props, "additionalProperties": False}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "urn:specc:ir:1",
        "title": "specc network, IR version 1",
        "description": "A network as specc's front end produces it: `specc compile FILE --emit json`.",
        "type": "object",
        "required": ["version", "layers"],
        "properties": {
            "version": {"const": 1},
            "source": {"type": "string", "description": "the file this IR was made from"},
            "input": {"description": "the declared per-sample input shape, or null to infer it",
                      "anyOf": [{"type": "null"},
                                {"type": "object", "required": ["shape"], "additionalProperties": False,
                                 "properties": {"shape": {"type": "array", "minItems": 1, "maxItems": 3,
                                                          "items": {"type": "integer", "minimum": 1,
                                                                    "maximum": 2**31 - 1}},
                                                "span": _SPAN}}]},
            "layers": {"type": "array", "items": {"$ref": "#/$defs/layer"}},
            "train": {"$ref": "#/$defs/train"},
            "graph": {"$ref": "#/$defs/graph"},
        },
        "additionalProperties": False,
        "$defs": defs,
    }


@cache
def load_schema() -> dict[str, Any]:
    """The schema file that ships with specc."""
    return json.loads((grammar_dir() / SCHEMA_FILE).read_text(encoding="utf-8"))


@cache
def _validator(exact_integers: bool = False) -> jsonschema.protocols.Validator:
    """The schema's validator. JSON has one number type, so JSON Schema counts 784.0 as an integer;
    with `exact_integers` (a .net file, where the two are written apart) an integer must be an int."""
    if not exact_integers:
        return jsonschema.Draft202012Validator(load_schema())
    checker = jsonschema.Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", lambda _, value: isinstance(value, int) and not isinstance(value, bool))
    return jsonschema.validators.extend(jsonschema.Draft202012Validator, type_checker=checker)(load_schema())


_PROVENANCE = ("span", "arg_spans", "origin", "written")


def validate(doc: Any, trusted_spans: bool = False, exact_integers: bool = False) -> list[Diagnostic]:
    """Every schema violation of an IR document, as diagnostics carrying IR paths.

    With `exact_integers` (IR lowered from a .net file), 784.0 where an integer is expected is an
    error ("write 784"); in a .json IR file it is an integer (specc.ir makes it an int).

    Layers are validated one by one, and a layer identical to one already validated is not
    validated again: a network of thousands of repeated layers checks in milliseconds. With
    `trusted_spans` (IR that specc lowered itself) the spans and origins, which lowering made,
    do not count in what makes two layers identical.
    """
    if not isinstance(doc, dict) or not isinstance(doc.get("layers"), list):
        return _sorted(_errors(doc, exact_integers))
    head = {**doc, "layers": []}
    found = _errors(head, exact_integers)
    verdicts: dict[str, list[Diagnostic]] = {}
    for i, layer in enumerate(doc["layers"]):
        if trusted_spans and isinstance(layer, dict) and layer.get("placeholder"):
            continue  # lowering left it where a layer's mistake is already reported
        view = {k: v for k, v in layer.items() if k not in _PROVENANCE} if trusted_spans and isinstance(layer, dict) \
            else layer
        key = json.dumps(view, sort_keys=True, default=repr)
        if key not in verdicts:
            verdicts[key] = _errors({"version": 1, "layers": [layer]}, exact_integers)
        found += [replace(d, path=("layers", i) + d.path[2:]) for d in verdicts[key]]
    return _sorted(found)


def _errors(doc: Any, exact_integers: bool = False) -> list[Diagnostic]:
    found: dict[tuple, Diagnostic] = {}
    for e in _validator(exact_integers).iter_errors(doc):
        for d in explain(doc, e):
            found.setdefault(d.path + (d.message,), d)
    return list(found.values())


def _sorted(found: list[Diagnostic]) -> list[Diagnostic]:
    return sorted(found, key=lambda d: tuple(str(p).zfill(8) for p in d.path))
