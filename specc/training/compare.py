"""Comparisons: several variants (specs, or one spec with settings varied) trained one after another
on the same data, order and seed, each into a normal run folder inside the comparison's own; then
one summary (compare.json) and one overlaid plot (compare.png). It never prints; it yields events."""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

from specc.errors import RunError
from specc.source import Source
from specc.training import plot, spread
from specc.training.events import Evaluated, Started, Step, Stopped, Warned
from specc.training.loop import Trainer
from specc.training.ranges import fmt
from specc.training.runfolder import writing
from specc.training.spread import Spread
from specc.training.world import ALONE, World


@dataclass(frozen=True)
class Variant:
    """One thing to train: a spec, the flags it is trained with, and an init overriding every layer's."""

    name: str
    source: Source
    flags: Mapping[str, Any] = field(default_factory=dict)
    init: str | float | None = None
    spec: str = ""  # the spec's name (file stem), and the varied settings it is trained with (what
    setting: str = ""  # a panel of compare-grid.png stands for), e.g. "init=0.0251"

    @property
    def folder_name(self) -> str:
        return re.sub(r"[^A-Za-z0-9_.=-]+", "_", self.name).strip("_") or "variant"


def variants(sources: Sequence[Source], varied: Mapping[str, Sequence[Any]],
             fixed: Mapping[str, Any]) -> list[Variant]:
    """Every spec with every combination of the varied settings; named by what differs."""
    combos: list[dict[str, Any]] = [{}]
    for key, values in varied.items():
        combos = [{**c, key: v} for c in combos for v in values]
    out = []
    for source in sources:
        for shared in combos:
            combo = dict(shared)  # (each spec's variants take their init out of their own copy)
            stem = Path(source.name).stem
            setting = " ".join(fmt(v) if k == "optimizer" else f"{k}={fmt(v)}" for k, v in combo.items()
                               if len(varied[k]) > 1)
            name = " ".join(p for p in (stem if len(sources) > 1 else "", setting) if p) or stem
            init = combo.pop("init", None)
            out.append(Variant(name, source, {**fixed, **combo}, init, stem, setting))
    return out


@dataclass(frozen=True)
class Outcome:
    """A variant's run: its folder, per-epoch records and every step's loss."""

    variant: Variant
    folder: Path
    records: tuple[dict[str, Any], ...]
    losses: tuple[float, ...]
    settings: str  # the optimizer as it ran, e.g. SGD lr=0.01
    failed: str | None = None  # why the run stopped early (NaN or infinity), None when it finished

    @property
    def final(self) -> dict[str, Any]:
        return self.records[-1] if self.records else {}

    def loss_at(self, iteration: int) -> float | None:
        """The training loss of step `iteration` (1-based), as the book prints it every 100 steps."""
        return self.losses[iteration - 1] if 0 < iteration <= len(self.losses) else None


@dataclass(frozen=True)
class Begun:
    index: int
    count: int
    variant: Variant
    trainer: Trainer


@dataclass(frozen=True)
class Finished:
    outcome: Outcome
    index: int = 0  # of the variant, from 0
    count: int = 1
    rank: int = 0  # the MPI rank that trained it


@dataclass(frozen=True)
class Comparison:
    folder: Path
    outcomes: tuple[Outcome, ...]
    plot: Path | None  # compare.png, None without matplotlib
    interrupted: bool = False
    grid: Path | None = None  # compare-grid.png: one panel per setting, a line per spec (see panels())


Event = Spread | Begun | Started | Step | Evaluated | Warned | Stopped | Finished | Comparison


def run(variants: Sequence[Variant], folder: Path, build: Callable[[Variant, Path], Trainer],
        stop: Callable[[], bool] = lambda: False, world: World = ALONE) -> Iterator[Event]:
    """Train each variant into folder/NN-name (build makes its Trainer); the last event is the Comparison.
    Under an MPI launch (`world`), each rank trains its share of the variants (specc.training.spread),
    and rank 0 alone gathers the outcomes and yields the Comparison."""
    outcomes: dict[int, Outcome] = {}
    interrupted = False
    one = partial(_variant, folder=folder, build=build, count=len(variants), rank=world.rank)
    for event in spread.run(list(enumerate(variants)), one, stop, (Finished, Warned, Stopped), world):
        interrupted = interrupted or isinstance(event, Stopped)
        if isinstance(event, Finished):
            outcomes[event.index] = event.outcome
        yield event
    if world.root:
        interrupted = interrupted or len(outcomes) < len(variants)
        yield summarize(folder, [outcomes[i] for i in sorted(outcomes)], interrupted)


def _variant(item: tuple[int, Variant], stop: Callable[[], bool], *, folder: Path,
             build: Callable[[Variant, Path], Trainer], count: int, rank: int) -> Iterator[Event]:
    """One variant's events, ending with its Finished (a variant that diverged or was stopped too)."""
    i, v = item
    trainer = build(v, folder / f"{i + 1:02d}-{v.folder_name}")
    losses: list[float] = []
    failed = None
    try:
        yield Begun(i, count, v, trainer)
        for event in trainer.run(stop):
            if isinstance(event, Step):
                losses.append(event.loss)
            yield event
    except RunError as e:  # a variant that diverges is a result (the book's plain net at scale 1), not the end
        failed = e.diagnostics[0].message
    finally:
        trainer.close()
    outcome = Outcome(v, trainer.dir, tuple(trainer.records), tuple(losses), _brief(trainer), failed)
    yield Finished(outcome, i, count, rank)


def _brief(trainer: Trainer) -> str:
    """The settings a comparison varies, briefly: SGD lr=0.01, and the weight decay if any."""
    s = trainer.s
    return f"{s.optimizer} lr={s.lr:g}" + (f" λ={s.weight_decay:g}" if s.weight_decay else "")


def summarize(folder: Path, outcomes: Sequence[Outcome], interrupted: bool = False) -> Comparison:
    folder.mkdir(parents=True, exist_ok=True)
    doc = {"variants": [{"name": o.variant.name, "folder": o.folder.name, "settings": o.settings,
                         "init": o.variant.init, "flags": dict(o.variant.flags), "final": o.final,
                         "failed": o.failed,
                         "losses": list(o.losses)} for o in outcomes], "interrupted": interrupted}
    path = folder / "compare.json"
    with writing(path):
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    png = folder / "compare.png"
    with writing(png):
        drawn = plot.comparison([(o.variant.name, o.losses, o.records) for o in outcomes], png, folder.name)
    grid = folder / GRID
    groups = panels(outcomes)
    if groups:
        with writing(grid):
            plot.panels(groups, grid, f"{folder.name}: train accuracy")
    return Comparison(folder, tuple(outcomes), png if drawn else None, interrupted,
                      grid if groups and drawn else None)


GRID = "compare-grid.png"


def panels(outcomes: Sequence[Outcome]) -> list[tuple[str, list[tuple[str, Sequence[dict[str, Any]]]]]]:
    """The variants as small multiples, one panel per value of the varied settings with a line per
    spec (the book's batch_norm_test.py figure), when there are several specs and several values or
    too many variants to read overlaid; [] otherwise. A variant that failed early draws what it has."""
    settings = list(dict.fromkeys(o.variant.setting for o in outcomes))
    specs = {o.variant.spec for o in outcomes}
    if len(settings) < 2 or (len(specs) < 2 and len(outcomes) <= 8):
        return []
    return [(setting, [(o.variant.spec if len(specs) > 1 else o.variant.name, o.records)
                       for o in outcomes if o.variant.setting == setting]) for setting in settings]
