"""The Python API: the only module that knows the whole pipeline, text -> checked network."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from specc import ir as ir_mod
from specc import memory
from specc.check import CheckedNetwork, check, check_train
from specc.compiler import Compiled, plan
from specc.compiler import compile as compile_network
from specc.errors import DataError, Diagnostic, FileError, SpecError, UsageError
from specc.expr.explain import Explanation
from specc.expr.explain import explain as explain_layer
from specc.graph import ir as graph_ir
from specc.graph.check import CheckedGraph
from specc.graph.check import check_graph as check_graph_ir
from specc.graph.draw import Drawing, draw_graph, draw_pipeline
from specc.graph.evaluate import Evaluation as GraphEvaluation
from specc.graph.evaluate import evaluate as evaluate_graph
from specc.locate import Locator, ir_locator, json_locator
from specc.lower import lower
from specc.network import Network
from specc.parse import parse
from specc.reading import decode_source, read_source
from specc.schema import validate
from specc.source import Source, Span
from specc.summary import Summary, summarize
from specc.training import checkpoint, compare, ranges, sweep
from specc.training import data as data_mod
from specc.training.evaluate import Evaluation, check_fit, evaluate
from specc.training.loop import Trainer
from specc.training.optimizers import OPTIMIZERS, canonical
from specc.training.runfolder import RunLock, new_run_folder
from specc.training.settings import Settings
from specc.training.settings import resolve as resolve_settings
from specc.training.world import ALONE, World

__all__ = ["check_any", "check_graph", "graph_evaluation", "drawing", "explanation", "explanation_drawing",
           "check_training_memory", "check_file", "check_text", "check_source", "compile", "evaluation",
           "generated_code", "ir_document", "Prediction", "prediction", "trained",
           "load", "read", "RunReport", "run_report", "summary", "training", "with_init", "comparison", "sweeping"]


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


def _checkpoint_file(path: str | Path, flag: str = "--weights") -> Path:
    """A checkpoint's path; a folder (a run folder, say) is refused with the files inside it to pass."""
    p = Path(path)
    if p.is_dir():
        inside = sorted(q.name for q in p.glob("*.npz"))
        example = next((n for n in ("best.npz", "weights.npz") if n in inside), inside[0] if inside else None)
        hint = (f"pass the checkpoint file inside it, e.g. {flag} {p / example}" if example
                else "pass a checkpoint file (weights.npz or best.npz of a run folder)")
        raise UsageError([Diagnostic(f"'{path}' is a folder, not a checkpoint file", None, "not-a-checkpoint",
                                     hint=hint)])
    return p


def _is_json(source: Source) -> bool:
    suffix = Path(source.name).suffix.lower()
    return suffix == ".json" or (suffix != ".net" and source.text.lstrip().startswith("{"))


def _front_end(source: Source) -> tuple[dict[str, Any], Locator, list[Diagnostic]]:
    """Parse and lower a .net file, or load a .json IR file: (IR document, locator, diagnostics so far)."""
    if _is_json(source):
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
    found += validate(doc, trusted_spans=not _is_json(source), exact_integers=not _is_json(source))
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


def graph_evaluation(source: Source) -> GraphEvaluation:
    """A graph evaluated forward and backward (SpecError at the node if log or sqrt gets a non-positive value)."""
    checked = check_graph(source)
    try:
        return evaluate_graph(checked)
    except SpecError as e:
        raise SpecError(e.diagnostics, source) from None


def drawing(source: Source) -> Drawing:
    """The drawing of a computational graph (with its values and gradients) or of a layer pipeline."""
    checked = check_any(source)
    if isinstance(checked, CheckedGraph):
        return draw_graph(graph_evaluation(source), source)
    return dataclasses.replace(draw_pipeline(summary(checked), source.name), warnings=checked.warnings)


def explanation(name: str) -> Explanation:
    """A built-in layer's prelude definition worked at a sample input (UsageError for a name it lacks)."""
    return explain_layer(name)


def explanation_drawing(ex: Explanation) -> Drawing:
    """The graph of an explanation, with its forward values and gradients, as `specc draw` draws graphs."""
    return draw_graph(ex.evaluation, ex.source)


def _checked_graph(source: Source, doc: dict[str, Any], locate: Locator, found: list[Diagnostic]) -> CheckedGraph:
    found += validate(doc, trusted_spans=not _is_json(source), exact_integers=not _is_json(source))
    if any(d.is_error for d in found):
        raise SpecError(_ordered(found, locate), source)
    try:
        checked = check_graph_ir(graph_ir.from_json(doc))
    except SpecError as e:
        raise SpecError(_ordered(found + list(e.diagnostics), locate), source) from None
    return dataclasses.replace(checked, warnings=tuple(_ordered(found + list(checked.warnings), locate)))


def _checked_network(source: Source, doc: dict[str, Any], locate: Locator, found: list[Diagnostic]) -> CheckedNetwork:
    schema_errors = validate(doc, trusted_spans=not _is_json(source), exact_integers=not _is_json(source))
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
    e = memory.estimate(p, **_training_sizes(settings))
    return summarize(checked, p, {"batch": settings.batch, "optimizer": settings.optimizer,
                                  "dtype": settings.dtype, "bytes": e.total, "parameter_bytes": e.parameters,
                                  "buffer_bytes": e.activations})


def check_training_memory(checked: CheckedNetwork, source: Source | None, max_memory: int | None = None) -> None:
    """Refuse (SpecError) a network that could not be trained within the memory budget, with the
    batch, dtype and optimizer of its train section (specc's defaults where it has none)."""
    settings = resolve_settings(checked.network.train, {})
    memory.enforce(plan(checked), source, max_memory, **_training_sizes(settings))


def _training_sizes(settings: Settings) -> dict[str, int]:
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


def _network(source: Source, dtype: str, fuse: bool, seed: int, max_memory: int | None,
             batch: int = 100, optimizer_slots: int = 0) -> Network:
    checked = check_source(source)
    itemsize = 8 if str(dtype) == "float64" else 4
    memory.enforce(plan(checked), source, max_memory, batch, itemsize, optimizer_slots)
    decay = resolve_settings(checked.network.train, {}).weight_decay
    return Network(compile_network(checked), source, dtype=dtype, fuse=fuse, seed=seed, weight_decay=decay)


def training(path: str | Path | Source, *, out: str | Path | None = None, resume: str | Path | None = None,
             data: str | None = None, max_memory: int | None = None, init_from: str | Path | None = None,
             dataset: data_mod.Dataset | None = None, world: World = ALONE, **flags: Any) -> "Trainer":
    """A Trainer ready to run: spec checked, settings resolved, data loaded and fitted, run folder
    prepared and locked (release it with trainer.close()). Flags: epochs, iters, batch, lr,
    optimizer, seed, dtype (None for not given). With `resume`, the run folder's saved settings
    are used and training continues from its last checkpoint (epochs/iters may extend it). With
    `init_from`, a new run starts from a checkpoint's weights and BatchNorm statistics (fine-tuning).
    `dataset` is data already loaded (then `data` only names it). `path` may be a Source already read
    (a variant of `specc compare`, say). Flags also: weight_decay, train_size, validation and
    eval_sample (see Settings). `world` (training.world.detect()) trains on the ranks of an MPI launch:
    every rank calls this; rank 0 alone locks and writes the run folder.
    """
    if init_from is not None and resume is not None:
        raise UsageError([Diagnostic("--init-from starts a new run; --resume continues one: give one of them",
                                     None, "conflicting-flags")])
    source = path if isinstance(path, Source) else read(path)
    checked = check_source(source)
    if init_from is not None:
        init_from = _checkpoint_file(init_from, "--init-from")
    if resume is not None:
        folder = _resume_folder(Path(resume), out)
    else:
        settings = resolve_settings(checked.network.train, {**flags, "data": data})
        folder = Path(out) if out is not None else new_run_folder(Path(source.name))
    # The lock comes first, so that a folder in use is refused as such, whatever it holds.
    lock = RunLock(folder) if world.root else None
    if lock is not None:
        lock.acquire()
    try:
        if resume is not None:
            config = _saved_config(folder)
            settings = _resumed_settings(folder, config, flags)
            data = data or config["data"]["origin"]
        elif (folder / "weights.npz").exists():
            raise UsageError([Diagnostic(f"{folder} holds an earlier run (weights.npz); it is not overwritten",
                                         None, "folder-in-use",
                                         hint=f"continue it with --resume {folder}, or train into another --out")])
        memory.enforce(plan(checked), source, max_memory, **_training_sizes(settings))
        net = Network(compile_network(checked), source, dtype=settings.dtype, seed=settings.seed,
                      weight_decay=settings.weight_decay)
        if init_from is not None:
            checkpoint.restore(net, Path(init_from), source)
        if dataset is None:
            dataset = _dataset(settings.data if resume is None else data, checked, source,
                               from_spec=resume is None and data is None)
        dataset = data_mod.carved(dataset, settings.train_size, settings.validation, settings.seed)
        trainer = Trainer(net, dataset, settings, folder, source.text,
                          "model.json" if _is_json(source) else "model.net", world)
        if resume is not None:
            trainer.resume()
        elif world.root:
            trainer.start_files()
    except BaseException:
        if lock is not None:
            lock.release()
        raise
    trainer.lock = lock
    return trainer


def _dataset(name: str | None, checked: CheckedNetwork, source: Source, from_spec: bool) -> data_mod.Dataset:
    """The data set to train on; an unknown name written in the spec is shown at its line there."""
    try:
        return data_mod.load(name)
    except DataError as e:
        train = checked.network.train
        span = train.key_spans.get("data") if train is not None and from_spec else None
        if span is None or e.diagnostics[0].code != "unknown-data":
            raise
        raise DataError([dataclasses.replace(d, span=span) for d in e.diagnostics], source) from None


def _resume_folder(folder: Path, out: str | Path | None) -> Path:
    """The folder to resume; `--out` may repeat it (a requeued command), not name another."""
    if out is not None and Path(out).resolve() != folder.resolve():
        raise UsageError([Diagnostic(f"--out {out} and --resume {folder} name two run folders", None,
                                     "resume-settings", hint="a resumed run continues in its own folder; "
                                                             "leave out --out, or give it the same folder")])
    if not folder.is_dir():
        raise UsageError([Diagnostic(f"{folder} is not a run folder to resume (no such folder)", None, "no-run",
                                     hint="--resume takes the --out folder of an earlier specc train")])
    return folder


def _resumed_settings(folder: Path, config: dict[str, Any], flags: dict[str, Any]) -> Settings:
    """The saved settings of a run, extended by --epochs or --iters. A flag equal to the saved setting
    is accepted (a job scheduler requeues the identical command); only a real change is refused."""
    try:
        settings = Settings(**config["settings"])
        if settings.epochs is None and settings.iters is None:
            raise TypeError("neither epochs nor iters is set")
    except (KeyError, TypeError) as e:
        raise UsageError([Diagnostic(f"{folder}/config.json is not specc's ({e})", None, "no-run")]) from None
    changes = [f"--{key} {given} differs from the run's {key} {saved}"
               for key, given, saved in _given_and_saved(settings, flags) if given != saved]
    if changes:  # (--data may point at the same data set in a new place)
        raise UsageError([Diagnostic(
            "--resume continues a run with the settings it was started with; " + ", ".join(changes), None,
            "resume-settings", hint="flags equal to the run's settings may be repeated; only --epochs or --iters "
                                    "may extend a resumed run; start a new run (another --out) to change settings")])
    if flags.get("epochs") is not None or flags.get("iters") is not None:
        settings = dataclasses.replace(settings, epochs=flags.get("epochs"), iters=flags.get("iters"))
    return settings


def _given_and_saved(settings: Settings, flags: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """(flag, value given, value saved) for each setting flag given, compared as the run compares them:
    optimizer names without regard to case, numbers as numbers."""
    saved: dict[str, Any] = {"batch": settings.batch, "lr": settings.optimizer_args.get("lr"),
                             "optimizer": settings.optimizer,
                             "seed": settings.seed, "dtype": settings.dtype}
    given: dict[str, Any] = {k: flags[k] for k in saved if flags.get(k) is not None}
    if "optimizer" in given:
        given["optimizer"] = canonical(OPTIMIZERS, str(given["optimizer"])) or given["optimizer"]
    if "lr" in given and saved["lr"] is not None:
        given["lr"], saved["lr"] = float(given["lr"]), float(saved["lr"])
    return [(k, v, saved[k]) for k, v in given.items()]


def _saved_config(folder: Path) -> dict[str, Any]:
    try:
        return json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise UsageError([Diagnostic(f"{folder} is not a run folder to resume ({e})", None, "no-run",
                                     hint="--resume takes the --out folder of an earlier specc train")]) from None


def trained(path: str | Path, weights: str | Path) -> Network:
    """A network with the weights of a checkpoint (refused, with the lines, if they do not fit)."""
    net = load(path, dtype="float32")
    checkpoint.restore(net, _checkpoint_file(weights), net.source)
    return net


def evaluation(path: str | Path, weights: str | Path, data: str | None = None,
               split: str = "test") -> tuple[Network, data_mod.Dataset, Evaluation]:
    """(network, data set, Evaluation) of trained weights on a data set's train or test split."""
    net = trained(path, weights)
    dataset = data_mod.load(data)
    check_fit(net, dataset)
    x, t = (dataset.x_test, dataset.t_test) if split == "test" else (dataset.x_train, dataset.t_train)
    batches = data_mod.Batches(x, dataset.scale(), net.dtype, net.input_shape)
    return net, dataset, evaluate(net, batches, t)


@dataclasses.dataclass(frozen=True)
class Prediction:
    """Class probabilities (N, classes) of the images of every file, in order, and what to warn of."""

    probabilities: np.ndarray
    files: tuple[tuple[str, int], ...]  # each file and how many images it holds
    warnings: tuple[Diagnostic, ...]  # each names its file; `specc predict` prints them to stderr


def prediction(path: str | Path, weights: str | Path, images: str | Path | Sequence[str | Path],
               invert: bool = False) -> Prediction:
    """Class probabilities of trained weights for the images of one file or several (.npy, .npz,
    IDX, PGM or PNG), scaled as in training; `invert` turns dark-on-light images the MNIST way."""
    net = trained(path, weights)
    probabilities, files, warnings = [], [], []
    for file in [images] if isinstance(images, (str, Path)) else images:
        x, scale, said = data_mod.predict_inputs(file, net.input_shape, invert)
        probabilities.append(net.probabilities(x.astype(net.dtype) * net.dtype.type(scale)))
        files.append((str(file), len(x)))
        warnings += said
    return Prediction(np.concatenate(probabilities), tuple(files), tuple(warnings))


def generated_code(source: Source) -> str:
    """The standalone NumPy module of a spec's fused passes (`specc compile --emit python`)."""
    return compiled(source).code


def compiled(source: Source) -> Compiled:
    """The compiled form of a spec: its plan and generated module."""
    return compile_network(check_source(source))


def with_init(source: Source, init: str | float) -> Source:
    """The spec with every weighted layer's `init` replaced (he, xavier, auto or a standard deviation),
    as an IR document (model.json in its run folder), since the text itself is not rewritten."""
    doc = ir_document(source)
    changed = 0
    for layer in doc["layers"]:
        if "init" in layer.get("args", {}):
            layer["args"]["init"] = init
            changed += 1
    if not changed:
        raise UsageError([Diagnostic(f"{source.name} has no layer with weights to initialise (no `init`)", None,
                                     "no-init", hint="--init varies the init of Affine and Convolution layers")])
    return Source(str(Path(source.name).with_suffix(".json")), json.dumps(doc, indent=1))


_VARIED = {"optimizer": lambda f, t: _optimizer_name(t), "init": ranges.init_value}


def _optimizer_name(text: str) -> str:
    resolve_settings(None, {"optimizer": text})  # UsageError with a suggestion for an unknown name
    return canonical(OPTIMIZERS, text) or text


def _experiment_folder(out: str | Path | None, kind: str, marker: str) -> Path:
    folder = Path(out) if out is not None else new_run_folder(Path(kind))
    if (folder / marker).exists():
        raise UsageError([Diagnostic(f"{folder} holds an earlier {kind} ({marker}); it is not overwritten", None,
                                     "folder-in-use", hint="give another --out folder")])
    return folder


def comparison(specs: Sequence[str | Path], *, out: str | Path | None = None, data: str | None = None,
               optimizer: str | None = None, init: str | None = None, weight_decay: str | None = None,
               lr: str | None = None, stop: Any = None, **flags: Any) -> "Iterator[compare.Event]":
    """`specc compare`: every spec, with every combination of the varied settings (each a list or a grid
    as the command line writes them: "SGD,Adam", "std=0.01,xavier,he", "0,0.1", "1..1e-4:log:16"),
    trained on the same data, order and seed. Everything is checked before the first variant runs;
    the events end with a compare.Comparison. Flags: epochs, iters, batch, seed, train_size, eval_sample."""
    sources = [read_source(p) for p in specs]
    for source in sources:
        check_source(source)
    varied: dict[str, list[Any]] = {}
    for key, text in (("optimizer", optimizer), ("init", init), ("weight_decay", weight_decay), ("lr", lr)):
        if text is not None:
            varied[key] = ranges.listed(key.replace("_", "-"), text, _VARIED.get(key), positive=key == "lr")
    chosen = compare.variants(sources, varied, {k: v for k, v in flags.items() if v is not None})
    for v in chosen:
        if v.init is not None:
            with_init(v.source, v.init)
    folder = _experiment_folder(out, "compare", "compare.json")
    loaded = data_mod.load(data)

    def build(v: compare.Variant, where: Path) -> Trainer:
        source = v.source if v.init is None else with_init(v.source, v.init)
        return training(source, out=where, data=data, dataset=loaded, **v.flags)

    return compare.run(chosen, folder, build, stop or (lambda: False))


def sweeping(spec: str | Path | None, *, out: str | Path | None = None, resume: str | Path | None = None,
             data: str | None = None, lr: str | None = None, weight_decay: str | None = None,
             trials: int | None = None, validation: float | None = None, top: int = 20, stop: Any = None,
             **flags: Any) -> "Iterator[sweep.Event]":
    """`specc sweep`: trials of a spec with settings drawn from ranges ("1e-6..1e-2:log", a list, or a grid
    "1e-3..1e-1:log:5"), each scored on `validation` (default 0.2) of the training set, never the test set.
    With `resume`, the sweep folder's saved plan continues, its finished trials kept. Flags: epochs,
    iters, batch, optimizer, seed, train_size, eval_sample."""
    if resume is not None:
        folder = Path(resume)
        if out is not None and Path(out).resolve() != folder.resolve():
            raise UsageError([Diagnostic(f"--out {out} and --resume {folder} name two sweep folders", None,
                                         "resume-settings", hint="leave out --out")])
        doc, planned, done = sweep.load(folder)
        source = decode_source(doc["spec"], doc["spec_text"].encode("utf-8"))
        if spec is not None and read_source(spec).text != source.text:
            raise UsageError([Diagnostic(f"{spec} is not the spec the sweep in {folder} was started with", None,
                                         "resume-settings", hint="leave out FILE to resume with the saved spec")])
        fixed, data = doc["flags"], doc["data"]
    else:
        if spec is None:
            raise UsageError([Diagnostic("give the spec to sweep, or --resume DIR", None, "no-spec")])
        source = read_source(spec)
        check_source(source)
        chosen = [ranges.parse(key.replace("_", "-"), text, positive=key == "lr")
                  for key, text in (("lr", lr), ("weight_decay", weight_decay)) if text is not None]
        chosen = [dataclasses.replace(r, flag=r.flag.replace("-", "_")) for r in chosen]
        fixed = {k: v for k, v in flags.items() if v is not None}
        fixed["validation"] = 0.2 if validation is None else validation
        resolve_settings(None, fixed)  # an unknown optimizer is refused now, not at the first trial
        planned = sweep.plan(chosen, trials, int(fixed.get("seed", 0)))
        folder = _experiment_folder(out, "sweep", sweep.PLAN)
        done = {}
    loaded = data_mod.load(data)
    if resume is None:
        sweep.save_plan(folder, sweep.planned_doc(source.name, source.text, chosen, planned, fixed, data))

    def build(trial: sweep.Trial, where: Path) -> Trainer:
        return training(source, out=where, data=data, dataset=loaded, **{**fixed, **trial.values})

    return sweep.run(planned, folder, build, done, stop or (lambda: False), top)

@dataclasses.dataclass(frozen=True)
class RunReport:
    """What `specc report` shows of a run folder: its spec, figures, drawing, curves and how its final
    weights do on the test set (the confusion matrix and the misclassified samples)."""

    folder: Path
    spec_name: str  # model.net or model.json
    spec_text: str
    summary: Summary
    drawing_svg: str
    records: list[dict[str, Any]]  # metrics.jsonl
    config: dict[str, Any]  # config.json
    evaluation: Evaluation  # of weights.npz on the test split
    classes: int
    misclassified: np.ndarray  # indices into the test split, at most `misclassified_limit`
    test_images: np.ndarray  # the test samples at those indices, as stored (uint8 for MNIST)
    versions: dict[str, str]


def run_report(folder: str | Path, misclassified_limit: int = 48) -> RunReport:
    """Read a run folder that `specc train` wrote and evaluate its last checkpoint on its test set."""
    import platform

    from specc import __version__

    folder = Path(folder)
    if not (folder / "config.json").is_file():
        hint = ("pass the run folder, not a file in it" if folder.is_file() else
                "a run folder is the --out of `specc train` (runs/NAME-DATE-TIME by default)")
        raise UsageError([Diagnostic(f"'{folder}' is not a run folder (no config.json in it)", None, "no-run",
                                     hint=hint)])
    spec = next((folder / n for n in ("model.net", "model.json") if (folder / n).is_file()), None)
    if spec is None or not (folder / "weights.npz").is_file():
        raise UsageError([Diagnostic(f"'{folder}' holds no {'spec' if spec is None else 'weights.npz'}", None,
                                     "no-run", hint="the run stopped before its first checkpoint; train it again")])
    config = _saved_config(folder)
    records = []
    for line in (folder / "metrics.jsonl").read_text(encoding="utf-8").splitlines() \
            if (folder / "metrics.jsonl").is_file() else []:
        try:
            records.append(json.loads(line))
        except ValueError:
            continue  # a line cut short by a kill
    source = read(spec)
    checked = check_source(source)
    figures = summary(checked)
    net = trained(spec, folder / "weights.npz")
    dataset = data_mod.load(config.get("data", {}).get("origin"))
    check_fit(net, dataset)
    batches = data_mod.Batches(dataset.x_test, dataset.scale(), net.dtype, net.input_shape)
    result = evaluate(net, batches, dataset.t_test)
    wrong = np.flatnonzero(result.predicted != result.labels)[:misclassified_limit]
    versions = {"specc": __version__, "python": platform.python_version(), "numpy": np.__version__,
                "platform": platform.platform(terse=True)}
    return RunReport(folder, spec.name, source.text, figures, draw_pipeline(figures, spec.name).svg, records, config,
                     result, int(net.loss_layer.out_shape[0]), wrong, dataset.x_test[wrong], versions)
