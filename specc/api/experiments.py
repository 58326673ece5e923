"""Experiments of many runs: `specc compare` and `specc sweep`."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Iterator, Sequence

from specc.api.front import (
    check_source,
    ir_document,
)
from specc.api.runs import training
from specc.errors import Diagnostic, UsageError
from specc.reading import decode_source, read_source
from specc.source import Source
from specc.training import compare, ranges, spread, sweep
from specc.training import data as data_mod
from specc.training.loop import Trainer
from specc.training.optimizers import OPTIMIZERS, canonical
from specc.training.runfolder import new_run_folder
from specc.training.settings import resolve as resolve_settings
from specc.training.world import ALONE, World


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


def _experiment_folder(out: str | Path | None, kind: str, marker: str, world: World) -> Path:
    """The experiment's folder, chosen (and checked) by rank 0 for every rank."""
    def choose() -> Path:
        folder = Path(out) if out is not None else new_run_folder(Path(kind))
        if (folder / marker).exists():
            raise UsageError([Diagnostic(f"{folder} holds an earlier {kind} ({marker}); it is not overwritten",
                                         None, "folder-in-use", hint="give another --out folder")])
        return folder
    return spread.on_root(world, choose)


def comparison(specs: Sequence[str | Path], *, out: str | Path | None = None, data: str | None = None,
               optimizer: str | None = None, init: str | None = None, weight_decay: str | None = None,
               lr: str | None = None, stop: Any = None, world: World = ALONE,
               **flags: Any) -> "Iterator[compare.Event]":
    """`specc compare`: every spec, with every combination of the varied settings (each a list or a grid
    as the command line writes them: "SGD,Adam", "std=0.01,xavier,he", "0,0.1", "1..1e-4:log:16"),
    trained on the same data, order and seed. Everything is checked before the first variant runs;
    the events end with a compare.Comparison. Flags: epochs, iters, batch, seed, train_size, eval_sample.
    `world` (training.world.detect()) spreads the variants over the ranks of an MPI launch: every rank
    calls this; rank 0 alone yields the Comparison."""
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
    folder = _experiment_folder(out, "compare", "compare.json", world)
    loaded = data_mod.load(data)

    def build(v: compare.Variant, where: Path) -> Trainer:
        source = v.source if v.init is None else with_init(v.source, v.init)
        return training(source, out=where, data=data, dataset=loaded, **v.flags)

    return compare.run(chosen, folder, build, stop or (lambda: False), world)


def sweeping(spec: str | Path | None, *, out: str | Path | None = None, resume: str | Path | None = None,
             data: str | None = None, lr: str | None = None, weight_decay: str | None = None,
             trials: int | None = None, validation: float | None = None, top: int = 20, stop: Any = None,
             world: World = ALONE, seed_per_trial: bool = False, **flags: Any) -> "Iterator[sweep.Event]":
    """`specc sweep`: trials of a spec with settings drawn from ranges ("1e-6..1e-2:log", a list, or a grid
    "1e-3..1e-1:log:5"), each scored on `validation` (default 0.2) of the training set, never the test set.
    With `resume`, the sweep folder's saved plan continues, its finished trials kept. Flags: epochs,
    iters, batch, optimizer, seed, train_size, eval_sample. With `seed_per_trial`, each trial draws its own
    seed of the weights and the data order (the validation split stays the sweep's). `world`
    (training.world.detect()) spreads the trials over the ranks of an MPI launch (each trial trains alone
    on its rank): every rank calls this; rank 0 alone writes the sweep's files and yields the Swept."""
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
        checked = check_source(source)
        chosen = [ranges.parse(key.replace("_", "-"), text, positive=key == "lr")
                  for key, text in (("lr", lr), ("weight_decay", weight_decay)) if text is not None]
        chosen = [dataclasses.replace(r, flag=r.flag.replace("-", "_")) for r in chosen]
        fixed = {k: v for k, v in flags.items() if v is not None}
        fixed["validation"] = 0.2 if validation is None else validation
        resolve_settings(None, fixed)  # an unknown optimizer is refused now, not at the first trial
        seed = resolve_settings(checked.network.train, fixed).seed
        if seed_per_trial:
            fixed["split_seed"] = seed  # every trial is scored on the same held-out samples
        planned = sweep.plan(chosen, trials, int(fixed.get("seed", 0)), seeds=seed if seed_per_trial else None)
        folder = _experiment_folder(out, "sweep", sweep.PLAN, world)
        done = {}
    loaded = data_mod.load(data)
    if resume is None:
        doc = sweep.planned_doc(source.name, source.text, chosen, planned, fixed, data)
        spread.on_root(world, lambda: sweep.save_plan(folder, doc))

    def build(trial: sweep.Trial, where: Path) -> Trainer:
        return training(source, out=where, data=data, dataset=loaded, **{**fixed, **trial.values})

    return sweep.run(planned, folder, build, done, stop or (lambda: False), top, world=world)
