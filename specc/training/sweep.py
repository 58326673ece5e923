"""Hyperparameter sweeps: trials drawn at random (or on a grid) from ranges of settings, each a
normal run folder inside the sweep's, scored on a validation split carved from the training set;
a ranking, the best settings as a `train { }` block, and the best trials' curves. A sweep's plan
is drawn once and saved, so an interrupted sweep resumes with the trials it has not finished."""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np

from specc.errors import Diagnostic, UsageError
from specc.training import plot, spread
from specc.training.events import Evaluated, Started, Step, Stopped, Warned
from specc.training.loop import Trainer
from specc.training.ranges import Range, fmt, product
from specc.training.runfolder import writing
from specc.training.settings import Settings
from specc.training.spread import Spread
from specc.training.world import ALONE, World

PLAN, RESULTS, BEST, TOP = "sweep.json", "trials.jsonl", "best.train", "top.png"


@dataclass(frozen=True)
class Trial:
    index: int  # from 0
    values: Mapping[str, Any]  # setting -> value, e.g. {"lr": 0.0094, "weight_decay": 3.2e-7}

    @property
    def name(self) -> str:
        return " ".join(f"{k}={fmt(v)}" for k, v in self.values.items())

    @property
    def folder_name(self) -> str:
        return f"trial-{self.index + 1:03d}"


def plan(ranges: Sequence[Range], trials: int | None, seed: int, seeds: int | None = None) -> list[Trial]:
    """A grid search when every range is a grid (lists, or ranges with a number of points);
    otherwise `trials` random draws, in order from one generator seeded by `seed`. With `seeds`, every
    trial also gets a seed of its own (of its weights and data order), drawn from a generator of that."""
    planned = _plan(ranges, trials, seed)
    if seeds is None:
        return planned
    draws = np.random.default_rng([seeds, 5]).integers(0, 1_000_000, len(planned))  # short enough to read
    return [Trial(t.index, {**t.values, "seed": int(s)}) for t, s in zip(planned, draws)]


def _plan(ranges: Sequence[Range], trials: int | None, seed: int) -> list[Trial]:
    if not ranges:
        raise UsageError([Diagnostic("a sweep needs at least one setting to vary", None, "bad-range",
                                     hint="for example --lr 1e-6..1e-2:log --weight-decay 1e-8..1e-4:log")])
    if all(r.is_grid for r in ranges) and trials is None:
        return [Trial(i, values) for i, values in enumerate(product(ranges))]
    gridded = [r for r in ranges if r.points is not None]
    if gridded:
        raise UsageError([Diagnostic(f"--{gridded[0].flag} {gridded[0].describe()} is a grid, but the sweep is "
                                     "random", None, "bad-range",
                                     hint="give every setting as a grid (and no --trials) for a grid search, "
                                          "or leave out the number of points for a random one")])
    rng = np.random.default_rng([seed, 4])
    return [Trial(i, {r.flag: r.draw(rng) for r in ranges}) for i in range(trials or 20)]


@dataclass(frozen=True)
class TrialResult:
    trial: Trial
    folder: Path
    score: float  # the validation accuracy at the end (the book ranks by its last value)
    records: tuple[dict[str, Any], ...]
    settings: dict[str, Any]  # Settings.to_json() of the trial

    def to_json(self) -> dict[str, Any]:
        return {"index": self.trial.index, "values": dict(self.trial.values), "folder": self.folder.name,
                "score": self.score, "records": list(self.records), "settings": self.settings}

    @classmethod
    def from_json(cls, folder: Path, d: Mapping[str, Any]) -> "TrialResult":
        return cls(Trial(int(d["index"]), d["values"]), folder / d["folder"], float(d["score"]),
                   tuple(d["records"]), dict(d["settings"]))


@dataclass(frozen=True)
class TrialBegun:
    trial: Trial
    count: int
    trainer: Trainer


@dataclass(frozen=True)
class TrialFinished:
    result: TrialResult
    count: int = 1  # trials planned
    rank: int = 0  # the MPI rank that ran it


@dataclass(frozen=True)
class Swept:
    folder: Path
    ranked: tuple[TrialResult, ...]  # best first
    planned: int
    best: Path | None  # best.train
    plot: Path | None  # top.png
    resumed: int  # trials finished before this session, not run again
    interrupted: bool


Event = Spread | TrialBegun | Started | Step | Evaluated | Warned | Stopped | TrialFinished | Swept


def save_plan(folder: Path, doc: Mapping[str, Any]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with writing(folder / PLAN):
        (folder / PLAN).write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
        (folder / RESULTS).touch()


def load(folder: Path) -> tuple[dict[str, Any], list[Trial], dict[int, TrialResult]]:
    """A sweep folder's plan document, its trials and the results of those finished."""
    try:
        doc = json.loads((folder / PLAN).read_text(encoding="utf-8"))
        trials = [Trial(i, v) for i, v in enumerate(doc["trials"])]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UsageError([Diagnostic(f"{folder} is not a sweep folder to resume ({e})", None, "no-sweep",
                                     hint="--resume takes the --out folder of an earlier specc sweep")]) from None
    done: dict[int, TrialResult] = {}
    path = folder / RESULTS
    for line in (path.read_text(encoding="utf-8").splitlines() if path.exists() else []):
        try:
            result = TrialResult.from_json(folder, json.loads(line))
        except (ValueError, KeyError, TypeError):
            continue  # a line cut short by a kill: that trial runs again
        done[result.trial.index] = result
    return doc, trials, done


def run(trials: Sequence[Trial], folder: Path, build: Callable[[Trial, Path], Trainer],
        done: Mapping[int, TrialResult], stop: Callable[[], bool] = lambda: False, top: int = 20,
        title: str = "", world: World = ALONE) -> Iterator[Event]:
    """Run the trials not in `done`, each into folder/trial-NNN; the last event is Swept. Under an MPI
    launch (`world`), each rank runs its share of them (specc.training.spread) and rank 0 alone writes
    trials.jsonl as results come in and yields the Swept; every trial is still trained alone."""
    results = dict(done)
    interrupted = False
    pending = [t for t in trials if t.index not in results]
    one = partial(_trial, folder=folder, build=build, count=len(trials), rank=world.rank)
    for event in spread.run(pending, one, stop, (TrialFinished, Warned, Stopped), world):
        interrupted = interrupted or isinstance(event, Stopped)
        if isinstance(event, TrialFinished) and world.root:
            with writing(folder / RESULTS), open(folder / RESULTS, "a", encoding="utf-8") as f:
                f.write(json.dumps(event.result.to_json()) + "\n")
            results[event.result.trial.index] = event.result
        yield event
    if world.root:
        interrupted = interrupted or len(results) < len(trials)
        yield summarize(folder, list(results.values()), len(trials), len(done), interrupted, top, title)


def _trial(trial: Trial, stop: Callable[[], bool], *, folder: Path, build: Callable[[Trial, Path], Trainer],
           count: int, rank: int) -> Iterator[Event]:
    """One trial's events, ending with its TrialFinished unless it was stopped."""
    trial_dir = folder / trial.folder_name
    if trial_dir.is_dir():  # begun but not finished when the sweep was stopped: it starts again
        shutil.rmtree(trial_dir)
    trainer = build(trial, trial_dir)
    try:
        yield TrialBegun(trial, count, trainer)
        for event in trainer.run(stop):
            yield event
            if isinstance(event, Stopped):
                return
    finally:
        trainer.close()
    records = tuple(trainer.records)
    result = TrialResult(trial, trainer.dir, float(records[-1]["test_acc"]) if records else float("nan"),
                         records, trainer.s.to_json())
    yield TrialFinished(result, count, rank)


def summarize(folder: Path, results: Sequence[TrialResult], planned: int, resumed: int, interrupted: bool,
              top: int, title: str) -> Swept:
    ranked = tuple(sorted(results, key=lambda r: (-_score(r), r.trial.index)))
    best = None
    if ranked:
        best = folder / BEST
        with writing(best):
            best.write_text(train_block(Settings(**ranked[0].settings), ranked[0], len(results)), encoding="utf-8")
    png = folder / TOP
    with writing(png):
        drawn = plot.trials([(r.trial.name, r.records) for r in ranked[:top]], png,
                            title or f"{folder.name}: the best {min(top, len(ranked))} of {len(ranked)} trials")
    return Swept(folder, ranked, planned, best, png if drawn else None, resumed, interrupted)


def _score(r: TrialResult) -> float:
    return r.score if r.score == r.score else -1.0  # NaN last


def train_block(s: Settings, best: TrialResult, trials: int) -> str:
    """The best trial's settings as a `train { }` section to paste into the spec."""
    lines = [f"# the best of {trials} trials of specc sweep ({best.folder.name}): validation accuracy "
             f"{best.score:.4f}"]
    if s.train_size is not None or s.validation is not None:
        lines.append(f"# scored on {s.validation or 0:g} of the first {s.train_size or 'all'} training samples "
                     "held out for validation")
    entries = [("optimizer", s.describe()), ("batch", str(s.batch))]
    entries.append(("iters", f"{s.iters}") if s.iters is not None else ("epochs", f"{s.epochs}"))
    entries += [("weight_decay", f"{s.weight_decay:.3g}"), ("seed", str(s.seed))]
    if s.dtype != "float32":
        entries.append(("dtype", s.dtype))
    width = max(len(k) for k, _ in entries)
    return "\n".join([*lines, "train {", *(f"  {k.ljust(width)} = {v}" for k, v in entries), "}"]) + "\n"


def planned_doc(spec: str, text: str, ranges: Sequence[Range], trials: Sequence[Trial],
                flags: Mapping[str, Any], data: str | None) -> dict[str, Any]:
    return {"spec": spec, "spec_text": text, "ranges": {r.flag: r.describe() for r in ranges},
            "trials": [dict(t.values) for t in trials], "flags": dict(flags), "data": data}

