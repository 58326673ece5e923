"""The pipeline's front and middle: reading, checking (lower -> validate -> check), summarising,
compiling and loading a spec."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from specc import ir as ir_mod
from specc import memory
from specc.check import CheckedNetwork, check, check_train
from specc.compiler import Compiled, plan
from specc.compiler import compile as compile_network
from specc.errors import Diagnostic, FileError, SpecError
from specc.graph import ir as graph_ir
from specc.graph.check import CheckedGraph
from specc.graph.check import check_graph as check_graph_ir
from specc.locate import Locator, ir_locator, json_locator
from specc.lower import lower
from specc.network import Network
from specc.parse import parse
from specc.reading import decode_source, read_source
from specc.schema import validate
from specc.source import Source, Span
from specc.summary import Summary, summarize
from specc.training.optimizers import OPTIMIZERS
from specc.training.settings import Settings
from specc.training.settings import resolve as resolve_settings


def read(path: str | Path) -> Source:
    """A spec file's text; FileError if it is missing (naming `model.net` when `model` was given and
    that is beside it), unreadable or not UTF-8 text."""
    p = Path(path)
    if not p.exists() and not p.suffix:
        near = [q for q in (p.with_suffix(".net"), p.with_suffix(".json")) if q.is_file()]
        if near:
            raise FileError([Diagnostic(f"no such file: '{path}'", code="no-file",
                                        hint=f"did you mean '{near[0]}'?")], name=str(path))
    return read_source(path)


def is_json(source: Source) -> bool:
    suffix = Path(source.name).suffix.lower()
    return suffix == ".json" or (suffix != ".net" and source.text.lstrip().startswith("{"))


def _front_end(source: Source) -> tuple[dict[str, Any], Locator, list[Diagnostic]]:
    """Parse and lower a .net file, or load a .json IR file: (IR document, locator, diagnostics so far)."""
    if is_json(source):
        try:
            doc = json.loads(source.text)
        except json.JSONDecodeError as e:
            raise SpecError([Diagnostic(f"not valid JSON: {e.msg}", Span(e.lineno, e.colno, e.lineno, e.colno + 1),
                                        "bad-json", hint=_json_hint(e))], source) from None
        except RecursionError:
            raise SpecError([Diagnostic("the JSON nests too deeply", None, "bad-json")], source) from None
        if not isinstance(doc, dict):
            raise SpecError([Diagnostic("an IR document is a JSON object ({...})", Span(1, 1, 1, 2),
                                        "bad-ir")], source)
        return doc, json_locator(source.text), []
    if all(not line.strip() or line.lstrip().startswith("#") for line in source.text.splitlines()):
        what = "is empty" if not source.text.strip() else "holds only comments"
        raise SpecError([Diagnostic(
            f"the file {what}; it defines no network", None, "empty",
            hint="write a chain of layers, such as "
                 "`Affine(784, 50) -> ReLU -> Affine(50, 10) -> SoftmaxWithLoss`")], source)
    doc, errors = lower(parse(source), source.name)
    return doc, ir_locator(doc), errors


def _json_hint(e: json.JSONDecodeError) -> str | None:
    before = e.doc[:e.pos].rstrip()
    if before.endswith(",") and e.doc[e.pos:e.pos + 1] in ("]", "}"):
        return "JSON allows no comma after the last item of a list or object"
    if e.doc[e.pos:e.pos + 1] == "'":
        return "JSON strings are written in double quotes"
    return None


def ir_document(source: Source) -> dict[str, Any]:
    """The validated IR document of a spec (what `specc compile --emit json` prints); warnings do not stop it."""
    doc, locate, found = _front_end(source)
    found += validate(doc, trusted_spans=not is_json(source), exact_integers=not is_json(source))
    if any(d.is_error for d in found):
        raise SpecError(_ordered(found, locate), source)
    return doc


def check_any(source: Source) -> CheckedNetwork | CheckedGraph:
    """The checked network of a file of layers, or the checked graph of a file of graph statements."""
    doc, locate, found = _front_end(source)
    if isinstance(doc.get("graph"), dict):
        return _checked_graph(source, doc, locate, found)
    return _checked_network(source, doc, locate, found)


def check_source(source: Source) -> CheckedNetwork:
    """Run the front end on a source: parse, lower, validate, infer shapes.

    SpecError lists every error (with the warnings found beside them); a network with warnings
    only is returned, and its `warnings` are located and in source order. Every stage reports
    warnings as it reports errors, as diagnostics (a linter would add its own to `found`).
    Recovery is data: a layer whose mistake is reported stands as a placeholder in the IR,
    which checking steps over, so that the errors of every stage are reported together.
    A computational graph is refused: it has no layers to compile or train.
    """
    checked = check_any(source)
    if isinstance(checked, CheckedGraph):
        raise SpecError([Diagnostic(
            f"{source.name} is a computational graph, not a network of layers", None, "graph-file",
            hint="`specc grad` evaluates and differentiates it and `specc draw` draws it; summary, compile "
                 "--emit python, train, eval and gradcheck need a chain of layers")], source)
    return checked


def check_graph(source: Source) -> CheckedGraph:
    """The checked computational graph of a file of `input NAME = ...`, `let` and `output` statements."""
    checked = check_any(source)
    if not isinstance(checked, CheckedGraph):
        raise SpecError([Diagnostic(
            f"{source.name} is a network of layers, not a computational graph", None, "not-a-graph",
            hint="a graph is written `input x = 2`, `let t = x + y`, `output z = t ** 2`")], source)
    return checked


def _checked_graph(source: Source, doc: dict[str, Any], locate: Locator, found: list[Diagnostic]) -> CheckedGraph:
    found += validate(doc, trusted_spans=not is_json(source), exact_integers=not is_json(source))
    if any(d.is_error for d in found):
        raise SpecError(_ordered(found, locate), source)
    try:
        checked = check_graph_ir(graph_ir.from_json(doc))
    except SpecError as e:
        raise SpecError(_ordered(found + list(e.diagnostics), locate), source) from None
    return dataclasses.replace(checked, warnings=tuple(_ordered(found + list(checked.warnings), locate)))


def _checked_network(source: Source, doc: dict[str, Any], locate: Locator, found: list[Diagnostic]) -> CheckedNetwork:
    schema_errors = validate(doc, trusted_spans=not is_json(source), exact_integers=not is_json(source))
    found += schema_errors
    typed = _typed(doc, schema_errors)
    if typed is None or (not typed.layers and any(d.is_error for d in found)):
        # no network to infer (the document's frame is wrong, or nothing of the chain is left),
        # but the train section's own rules (epochs or iters) still apply
        if isinstance(doc.get("train"), dict):
            found += check_train(ir_mod.from_json({"version": 1, "layers": [], "train": doc["train"]},
                                                  invalid_settings=_bad(schema_errors, "train")))
        raise SpecError(_ordered(found, locate), source)
    try:
        checked = check(typed)
        found += checked.warnings
    except SpecError as e:
        found += list(e.diagnostics)
    if any(d.is_error for d in found):
        raise SpecError(_ordered(found, locate), source)
    return dataclasses.replace(checked, warnings=tuple(_ordered(found, locate)))


def _bad(schema_errors: list[Diagnostic], part: str) -> frozenset:
    """The layers (indices) or train settings (keys) that failed validation."""
    return frozenset(d.path[1] for d in schema_errors if d.path[:1] == (part,) and len(d.path) > 1)


def _typed(doc: dict[str, Any], schema_errors: list[Diagnostic]) -> ir_mod.NetworkSpec | None:
    """The typed network of a document, what failed validation set aside so that checking can go
    on past it (a bad layer becomes a placeholder; a bad train setting is left out); None when
    an error outside the layers and train settings leaves no network to infer."""
    local = {("layers",), ("train",)}
    if any(d.is_error and not (d.path[:1] in local and len(d.path) > 1) for d in schema_errors):
        return None
    return ir_mod.from_json(doc, _bad(schema_errors, "layers"), _bad(schema_errors, "train"))


def _ordered(errors: list[Diagnostic], locate: Locator) -> list[Diagnostic]:
    """Located, in source order, each mistake once: an error inside a block (or a repeated
    group) is found once per copy, but it is one mistake at one place."""
    unique: dict[tuple, Diagnostic] = {}
    for d in (d.located(locate) for d in errors):
        key = (d.severity, d.message, d.span, d.code, d.label, d.hint, tuple((n.span, n.message) for n in d.notes))
        unique.setdefault(key, d)
    return sorted(unique.values(), key=_position)


def _position(d: Diagnostic) -> tuple[int, int]:
    return (d.span.line, d.span.col) if d.span else (0, 0)


def check_file(path: str | Path) -> CheckedNetwork:
    return check_source(read(path))


def check_text(text: str, name: str = "<string>") -> CheckedNetwork:
    return check_source(decode_source(name, text.encode("utf-8")))


def summary(checked: CheckedNetwork) -> Summary:
    """The figures of a network, with the memory training it takes with its train section's settings."""
    p = plan(checked)
    settings = resolve_settings(checked.network.train, {})
    e = memory.estimate(p, **training_sizes(settings))
    return summarize(checked, p, {"batch": settings.batch, "optimizer": settings.optimizer,
                                  "dtype": settings.dtype, "bytes": e.total, "parameter_bytes": e.parameters,
                                  "buffer_bytes": e.activations})


def check_training_memory(checked: CheckedNetwork, source: Source | None, max_memory: int | None = None) -> None:
    """Refuse (SpecError) a network that could not be trained within the memory budget, with the
    batch, dtype and optimizer of its train section (specc's defaults where it has none)."""
    settings = resolve_settings(checked.network.train, {})
    memory.enforce(plan(checked), source, max_memory, **training_sizes(settings))


def training_sizes(settings: Settings) -> dict[str, int]:
    """What the memory estimate needs to know of training settings."""
    return {"batch": settings.batch, "itemsize": 8 if settings.dtype == "float64" else 4,
            "optimizer_slots": OPTIMIZERS[settings.optimizer].slots}


def load(path: str | Path, *, dtype: str = "float32", fuse: bool = True, seed: int = 0,
         max_memory: int | None = None) -> Network:
    """Compile a .net or IR .json file into a Network (float32 for training, float64 for checks).

    fuse=False gives the unfused reference path, one layer at a time. A network that would need
    more than `max_memory` bytes to train at batch 100 (default: specc.memory.default_budget())
    is refused before anything is allocated.
    """
    return _network(read(path), dtype, fuse, seed, max_memory)


def compile(text: str, *, name: str = "<string>", dtype: str = "float32", fuse: bool = True,  # noqa: A001
            seed: int = 0, max_memory: int | None = None) -> Network:
    """Compile spec text into a Network; see load()."""
    return _network(decode_source(name, text.encode("utf-8")), dtype, fuse, seed, max_memory)


def load_source(source: Source, *, dtype: str = "float32", fuse: bool = True, seed: int = 0,
                max_memory: int | None = None) -> Network:
    """Compile a spec already read (a variant with_init made, say) into a Network; see load()."""
    return _network(source, dtype, fuse, seed, max_memory)


def _network(source: Source, dtype: str, fuse: bool, seed: int, max_memory: int | None,
             batch: int = 100, optimizer_slots: int = 0) -> Network:
    checked = check_source(source)
    itemsize = 8 if str(dtype) == "float64" else 4
    memory.enforce(plan(checked), source, max_memory, batch, itemsize, optimizer_slots)
    decay = resolve_settings(checked.network.train, {}).weight_decay
    return Network(compile_network(checked), source, dtype=dtype, fuse=fuse, seed=seed, weight_decay=decay)


def generated_code(source: Source) -> str:
    """The standalone NumPy module of a spec's fused passes (`specc compile --emit python`)."""
    return compiled(source).code


def compiled(source: Source) -> Compiled:
    """The compiled form of a spec: its plan and generated module."""
    return compile_network(check_source(source))
