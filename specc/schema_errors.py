"""A schema violation of an IR document -> Diagnostics: what was expected, what was received, and a hint."""
from __future__ import annotations

from typing import Any, Mapping

import jsonschema

from specc import layers
from specc.errors import Diagnostic
from specc.layers.args import Arg
from specc.suggest import did_you_mean
from specc.text import value_text
from specc.training.optimizers import OPTIMIZERS, SCHEDULES
from specc.training.section import SETTINGS


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


def explain(doc: Any, e: jsonschema.ValidationError) -> list[Diagnostic]:
    """One validation error as diagnostics, in the words of the argument or setting it concerns."""
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
