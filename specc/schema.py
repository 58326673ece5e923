"""Stage 3: the JSON Schema of the IR (assembled from the registries) and validation against it.

The schema file shipped beside the grammar (grammar/ir.schema.json) is what validation uses;
a test checks that it equals the schema assembled here, so a layer is still added in one place
(`specc schema > grammar/ir.schema.json` refreshes the file).
"""
from __future__ import annotations

import json
from dataclasses import replace
from functools import cache
from typing import Any, Iterable, Mapping

import jsonschema

from specc import layers
from specc.errors import Diagnostic
from specc.expr.schema import expression_defs
from specc.graph.schema import graph_defs
from specc.layers.args import Arg
from specc.resources import grammar_dir
from specc.suggest import did_you_mean
from specc.text import value_text
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
        for d in _explain(doc, e):
            found.setdefault(d.path + (d.message,), d)
    return list(found.values())


def _sorted(found: list[Diagnostic]) -> list[Diagnostic]:
    return sorted(found, key=lambda d: tuple(str(p).zfill(8) for p in d.path))


# --- turning schema errors into sentences -------------------------------------------------

def _signature_of(doc: Any, path: tuple) -> tuple[str, str, list[Arg]] | None:
    """(what, name, arguments) of the call at `path` (a layer, optimizer or schedule)."""
    node = doc
    for p in path:
        try:
            node = node[p]
        except (KeyError, IndexError, TypeError):
            return None
    if not isinstance(node, dict) or not isinstance(node.get("type"), str):
        return None
    name = node["type"]
    if path[:1] == ("layers",):
        cls = layers.REGISTRY.get(name)
        return ("layer", name, list(cls.signature)) if cls else None
    table = OPTIMIZERS if path[-1:] == ("optimizer",) else SCHEDULES
    spec = table.get(name)
    return (path[-1], name, list(spec.signature)) if spec else None


def _explain(doc: Any, e: jsonschema.ValidationError) -> list[Diagnostic]:
    path = tuple(e.absolute_path)
    v = e.validator
    # An argument of a layer, optimizer or schedule: ('layers', 3, 'args', 'kernel').
    if len(path) >= 2 and path[-2] == "args" or (path[-1:] == ("args",) and v in ("required", "additionalProperties")):
        call_path = path[:-2] if path[-2:-1] == ("args",) else path[:-1]
        sig = _signature_of(doc, call_path)
        if sig is not None:
            what, name, signature = sig
            known = [a.name for a in signature]
            takes = f"{name} takes {', '.join(known)}" if known else f"{name} takes no arguments"
            if v == "additionalProperties":
                return [Diagnostic(f"{name} has no argument '{extra}'", None, "unknown-arg", "unknown argument",
                                   did_you_mean(extra, known) or takes, path=call_path + ("args", extra))
                        for extra in e.instance if extra not in known]
            if v == "required":
                # `kernal=5` is reported as an unknown argument with 'kernel' suggested; saying that
                # 'kernel' is missing as well would report one typo twice.
                misspelt = [k for k in e.instance if k not in known]
                return [Diagnostic(f"{name} needs the argument '{missing}' "
                                   f"({_meaning(signature, missing)})",
                                   None, "missing-arg", f"'{missing}' missing",
                                   f"{takes}, e.g. `{_example(name, signature)}`", path=call_path)
                        for missing in e.validator_value if missing not in e.instance
                        and not any(did_you_mean(k, [missing]) for k in misspelt)]
            arg = _arg(signature, path[-1])
            if arg is not None:
                if _written_as_float(e, arg.schema):
                    return _integer_written_as_float(f"{name}: '{arg.name}'", arg.expects, arg.schema, e, "bad-arg",
                                                     path)
                hint = did_you_mean(e.instance, _enum_values(arg.schema)) if isinstance(e.instance, str) else None
                return [Diagnostic(f"{name}: '{arg.name}' expects {_with_limit(arg.expects, e)}, "
                                   f"but received {value_text(e.instance)}", None, "bad-arg", "", hint, path=path)]
    if path[:1] == ("train",):
        if v == "additionalProperties" and path == ("train",):
            return [Diagnostic(f"unknown train setting '{extra}'", None, "unknown-setting", "unknown setting",
                               did_you_mean(extra, SETTINGS) or "settings: " + ", ".join(SETTINGS),
                               path=("train", extra))
                    for extra in e.instance if extra not in SETTINGS and extra not in ("span", "key_spans")]
        if path[-1:] == ("type",) and len(path) == 3:
            table = OPTIMIZERS if path[1] == "optimizer" else SCHEDULES
            return [Diagnostic(f"unknown {path[1]} {value_text(e.instance)}", None, f"unknown-{path[1]}",
                               f"not a known {path[1]}",
                               did_you_mean(str(e.instance), table) or f"{path[1]}s: " + ", ".join(table),
                               path=path)]
        if len(path) == 2 and path[1] in SETTINGS:
            st = SETTINGS[path[1]]
            if _written_as_float(e, st.schema):
                return _integer_written_as_float(f"train setting '{st.key}'", st.expects, st.schema, e,
                                                 "bad-setting", path)
            return [Diagnostic(f"train setting '{st.key}' expects {_with_limit(st.expects, e)}, "
                               f"but received {value_text(e.instance)}", None, "bad-setting", "", path=path)]
    if path[:1] == ("layers",) and path[-1:] == ("type",) and v == "enum":
        return [Diagnostic(f"unknown layer {value_text(e.instance)}", None, "unknown-layer", "not a layer",
                           layers.foreign_hint(str(e.instance))
                           or did_you_mean(str(e.instance), layers.names(), layers.ALIASES), path=path)]
    if path == ("version",):
        return [Diagnostic(f"unsupported IR version {value_text(e.instance)}; this specc reads version 1",
                           None, "bad-ir", path=path)]
    if path[:1] == ("input",):
        bound = _upper_bound(e)
        each = f" up to {_limit(bound[1])}" if bound else ""
        return [Diagnostic(f"the input shape must be 1 to 3 positive integers{each}, but received "
                           f"{value_text(_input_shape(doc))}",
                           None, "bad-input", hint="for example `input 784` or `input 1x28x28`", path=("input",))]
    where = "/".join(map(str, path)) or "the document"
    return [Diagnostic(f"invalid IR at {where}: {e.message}", None, "bad-ir", path=path)]


def _limit(value: float) -> str:
    """A bound as a person writes it: 2,147,483,647; 1,000,000; 0.5."""
    return f"{int(value):,}" if float(value).is_integer() else f"{value:g}"


def _upper_bound(e: jsonschema.ValidationError) -> tuple[str, float] | None:
    """("maximum" or "exclusiveMaximum", the bound) that a value went past, here or in a branch of anyOf."""
    if e.validator in ("maximum", "exclusiveMaximum"):
        return str(e.validator), e.validator_value
    return next((b for b in map(_upper_bound, e.context or ()) if b), None)


def _with_limit(expects: str, e: jsonschema.ValidationError) -> str:
    """What an argument expects, with the upper bound the value went past (unless it says it already)."""
    bound = _upper_bound(e)
    if bound is None or _limit(bound[1]) in expects:
        return expects
    head, paren, meaning = expects.partition(" (")  # "a positive integer (the number of outputs)"
    return f"{head} {'up to' if bound[0] == 'maximum' else 'below'} {_limit(bound[1])}{paren}{meaning}"


def _written_as_float(e: jsonschema.ValidationError, schema: Mapping[str, Any]) -> bool:
    """An integer written with a decimal point (784.0) where the declared schema wants an integer
    (directly, or as the integer of `integer or null`)."""
    return (schema.get("type") == "integer" and isinstance(e.instance, float) and e.instance.is_integer()
            and any(x.validator == "type" and x.validator_value == "integer" for x in (e, *(e.context or ()))))


def _integer_written_as_float(what: str, expects: str, schema: Mapping[str, Any], e: jsonschema.ValidationError,
                              code: str, path: tuple) -> list[Diagnostic]:
    """`784.0` for an integer: "write 784"; a value that is out of range as well is reported for its range."""
    value = e.instance
    if not schema.get("minimum", value) <= value <= schema.get("maximum", value):
        return []  # the bound it breaks is reported (once) by its own check
    return [Diagnostic(f"{what} expects {expects}, but received {value_text(value)}", None, code, "",
                       f"write {int(value)}: in a .net file an integer is written without a decimal point",
                       path=path)]


def _input_shape(doc: Any) -> Any:
    inp = doc.get("input")
    return inp.get("shape") if isinstance(inp, dict) else inp


def _arg(signature: list[Arg], name: Any) -> Arg | None:
    return next((a for a in signature if a.name == name), None)


def _meaning(signature: list[Arg], name: str) -> str:
    """What a required argument is, for a message; the schema requires only the signature's names."""
    arg = next(a for a in signature if a.name == name)
    return arg.doc or arg.expects


def _enum_values(schema: Mapping[str, Any]) -> list[str]:
    values = list(schema.get("enum", []))
    for sub in schema.get("anyOf", []):
        values += sub.get("enum", [])
    return [v for v in values if isinstance(v, str)]


def _example(name: str, signature: list[Arg]) -> str:
    shown = [f"{a.name}=..." for a in signature if a.required]
    return f"{name}({', '.join(shown)})"
