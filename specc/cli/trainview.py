"""How `specc train` shows a run: a progress bar on a terminal, one line per epoch, a closing summary.

Training itself never prints; this view renders the events of specc.training.loop.Trainer.run.
"""
from __future__ import annotations

import math
import signal
import time
from typing import Any, Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.text import Text

from specc.cli.curveview import curve_chart
from specc.diagnostics import render, render_diagnostics
from specc.errors import RunError
from specc.training.compare import Begun, Comparison, Finished
from specc.training.events import Evaluated, Started, Step, Stopped, Warned
from specc.training.loop import Trainer
from specc.training.spread import Spread
from specc.training.sweep import Swept, TrialBegun, TrialFinished

_COLUMNS = (("epoch", 5), ("iter", 7), ("loss", 8), ("train acc", 9), ("test acc", 9), ("test loss", 9),
            ("time s", 8), ("samples/s", 10))


class StopFlag:
    """Ctrl-C, or SIGTERM (a batch system's time limit or preemption; Open MPI's mpirun passes Ctrl-C
    on as one), asks the run to stop after the current step, its checkpoint saved; a second stops at once."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def __call__(self) -> bool:
        return self.requested

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> "StopFlag":
        for signum in self.SIGNALS:
            try:
                self._previous[signum] = signal.signal(signum, self._handle)
            except ValueError:  # not the main thread (e.g. under a test runner's thread): no handler
                pass
        return self

    def __exit__(self, *exc) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous = {}


class TrainView:
    def __init__(self, trainer: Trainer, spec: str, console: Console, errors: Console | None = None):
        self.t, self.spec, self.console = trainer, spec, console
        self.errors = errors or console  # where a failed run is reported

    def run(self) -> int:
        t, c = self.t, self.console
        s, data = t.s, t.data
        length = f"{s.iters:,} iterations" if s.iters is not None else f"{s.epochs} epochs"
        # Short lines: each fits in 80 columns unless a path is long (wrapped text is hard to read).
        c.print(Text.assemble(("training ", "bold"), (self.spec, "bold"), f" on {data.name}"), soft_wrap=True)
        c.print(f"  {len(data.x_train):,} train / {len(data.x_test):,} test samples; {length} "
                f"({t.per_epoch:,} iterations per epoch)", soft_wrap=True, highlight=False, markup=False)
        c.print(f"  {s.describe()}, batch {s.batch}, {s.dtype}, seed {s.seed}"
                + (f", weight decay {s.weight_decay:g}" if s.weight_decay else "")
                + (f", schedule {s.schedule}" if s.schedule != "constant" else ""),
                soft_wrap=True, highlight=False, markup=False)
        if t.world.size > 1 and t.world.comm is None:  # threads for ranks (--as-ranks N)
            c.print(f"  as {t.world.size} MPI ranks would, in {t.world.size} threads of this process: each takes its "
                    "share of every batch and evaluation, their sums in rank order",
                    soft_wrap=True, highlight=False, markup=False)
        elif t.world.size > 1:
            where = ("all on one machine, sharing gradients and weights in memory" if t.ranks.node is not None
                     else "exchanging gradients and weights as messages")
            c.print(f"  on {t.world.size} MPI ranks, each taking its share of every batch and evaluation,\n"
                    f"  {where};\n  samples/s is the throughput of all {t.world.size} ranks together",
                    soft_wrap=True, highlight=False, markup=False)
        c.print(f"  run folder: {t.dir}", soft_wrap=True, highlight=False, markup=False)
        live = c.is_terminal
        progress = Progress(BarColumn(bar_width=None), MofNCompleteColumn(), TextColumn("loss {task.fields[loss]}"),
                            TextColumn("{task.fields[speed]}"), TextColumn("elapsed {task.fields[elapsed]}"),
                            TextColumn("left {task.fields[left]}"), console=c, transient=True, disable=not live,
                            expand=True)
        out = progress.console if live else c
        clock = _Clock(t.s.batch)
        try:
            with StopFlag() as stop, progress:
                task, stopped = None, False
                for event in t.run(stop):
                    if isinstance(event, Step):
                        if task is not None and clock.due(event.iteration, t.total):
                            fields: dict[str, Any] = clock.fields(event.iteration, t.total)
                            progress.update(task, completed=event.iteration, loss=f"{event.loss:.4f}", **fields)
                    elif isinstance(event, Started):
                        clock.start(event.start)
                        first: dict[str, Any] = clock.fields(event.start, event.total)
                        task = progress.add_task("train", total=event.total, completed=event.start, loss="-", **first)
                        if event.start:
                            out.print(f"  resuming at iteration {event.start:,} of {event.total:,}",
                                      highlight=False, markup=False)
                        out.print(Text(_header(), style="bold"), soft_wrap=True)
                    elif isinstance(event, Evaluated):
                        out.print(_line(event.record, event.best), soft_wrap=True, highlight=False, markup=False)
                    elif isinstance(event, Warned):
                        render_diagnostics([event.diagnostic], t.net.source, self.spec, self.errors)
                    elif isinstance(event, Stopped):
                        out.print(Text(f"stopped after iteration {event.iteration:,}; checkpoint saved in "
                                       f"{t.dir}/weights.npz", style="bold yellow"), soft_wrap=True)
                        out.print(f"resume with: specc train {self.spec} --resume {t.dir}", soft_wrap=True,
                                  highlight=False, markup=False)
                        out.file.flush()
                        stopped = True  # (the run goes on to draw its curve, then ends)
        except RunError as e:
            c = self.errors
            render(e, c)
            if t.saved is None:
                c.print("no checkpoint was written: the run failed before the end of its first epoch", soft_wrap=True,
                        highlight=False, markup=False)
            else:
                c.print(f"the last good checkpoint stays in {t.dir}/weights.npz (iteration {t.saved:,})",
                        soft_wrap=True, highlight=False, markup=False)
            return 1
        if stopped:
            return 1
        self._summary()
        if live and len(t.records) > 1:
            c.print(curve_chart(t.records, min(c.width, 100)))
        return 0

    def _summary(self) -> None:
        t, c = self.t, self.console
        last = t.records[-1] if t.records else None
        if last is None:
            return
        best = max(t.records, key=lambda r: r["test_acc"])
        c.print(Text.assemble(("done: ", "bold green"), f"{last['iteration']:,} iterations in "
                              f"{last['elapsed_s']:.2f} s of training; test accuracy ",
                              (f"{last['test_acc']:.4f}", "bold")), soft_wrap=True)
        c.print(f"  best test accuracy {best['test_acc']:.4f} at epoch {best['epoch']}; train accuracy "
                f"{last['train_acc']:.4f}", soft_wrap=True, highlight=False, markup=False)
        files = f"{t.spec_file} config.json metrics.jsonl weights.npz best.npz"
        if t.curve:
            files += " curve.png"
        c.print(f"  files in {t.dir}:", soft_wrap=True, highlight=False, markup=False)
        c.print(f"    {files}", soft_wrap=True, highlight=False, markup=False)
        c.print(f"  the run as a page: specc report {t.dir}", soft_wrap=True, highlight=False, markup=False)
        if not t.curve:
            c.print("  no curve.png: matplotlib is not installed (pip install matplotlib)", soft_wrap=True,
                    highlight=False, markup=False)


class _Clock:
    """The live bar's figures: samples/s and the time left, from this session's steps so far (the first
    estimate comes from the first steps; evaluations are counted in once they happen)."""

    def __init__(self, batch: int) -> None:
        self.batch = batch
        self.began = time.monotonic()
        self.first = 0
        self.shown = 0.0

    def start(self, iteration: int) -> None:
        self.began, self.first = time.monotonic(), iteration

    def due(self, iteration: int, total: int) -> bool:
        """Whether to redraw: ten times a second at most, and at the end."""
        now = time.monotonic()
        if iteration >= total or now - self.shown >= 0.1:
            self.shown = now
            return True
        return False

    def fields(self, iteration: int, total: int) -> dict[str, str]:
        spent, done = time.monotonic() - self.began, iteration - self.first
        if done <= 0 or spent <= 0:
            return {"speed": "- samples/s", "elapsed": _clock(0), "left": "-:--"}
        return {"speed": f"{done * self.batch / spent:,.0f} samples/s", "elapsed": _clock(spent),
                "left": _clock(spent / done * (total - iteration))}


def _clock(seconds: float) -> str:
    """0:07, 12:30, 1:02:03."""
    s = int(seconds + 0.5)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def _cell(value: float, spec: str, width: int) -> str:
    """`value` in its column's format, or in e-notation when that is too wide: a column never breaks
    (a loss of 4e20 reads 4.08e+20 in a column of 8)."""
    text = format(value, spec)
    if len(text) <= width or not math.isfinite(value):
        return text
    for digits in range(width, -1, -1):
        text = f"{value:.{digits}e}"
        if len(text) <= width:
            return text
    return text  # (only past 1e+100 in a column of 5; none is that narrow)


def _header() -> str:
    return " ".join(f"{name:>{width}}" for name, width in _COLUMNS)


def _line(r: dict[str, Any], best: bool) -> Text:
    values = [(r["epoch"], "d"), (r["iteration"], ","), (r["loss"], ".4f"), (r["train_acc"], ".4f"),
              (r["test_acc"], ".4f"), (r["test_loss"], ".4f"), (r["elapsed_s"], ".2f"), (r["samples_per_s"], ",.0f")]
    cells = [_cell(value, spec, width) for (value, spec), (_, width) in zip(values, _COLUMNS)]
    text = Text(" ".join(f"{cell:>{width}}" for cell, (_, width) in zip(cells, _COLUMNS)))
    if best:
        text.append(" *", style="bold green")
    return text


class ExperimentView:
    """How `specc compare` and `specc sweep` show their progress: a line as each variant or trial
    starts and ends (the table comes after, from specc.cli.views). Spread over MPI ranks, the runs of
    all ranks end in any order: then each gets its line, with its rank, when it ends."""

    def __init__(self, console: Console, errors: Console):
        self.console, self.errors = console, errors
        self.spread = False

    def _spread(self, event: Spread, what: str) -> None:
        self.spread = True
        self.console.print(f"{event.runs} {what} on {event.ranks} MPI ranks, each rank training the next as it "
                           "finishes one, alone; rank 0 gathers the results", soft_wrap=True, highlight=False,
                           markup=False)

    def compare(self, events: Iterator[Any]) -> Comparison:
        c = self.console
        for event in events:
            if isinstance(event, Spread):
                self._spread(event, "variants")
            elif isinstance(event, Begun) and not self.spread:
                s = event.trainer.s
                length = f"{s.iters:,} iterations" if s.iters is not None else f"{s.epochs} epochs"
                c.print(f"[{event.index + 1}/{event.count}] {event.variant.name}: {s.describe()}, batch {s.batch}, "
                        f"{length}, seed {s.seed}, {len(event.trainer.data.x_train):,} samples -> "
                        f"{event.trainer.dir}", soft_wrap=True, highlight=False, markup=False)
            elif isinstance(event, Finished):
                if self.spread:
                    c.print(f"[{event.index + 1}/{event.count}] {event.outcome.variant.name} (rank {event.rank}) -> "
                            f"{event.outcome.folder}", soft_wrap=True, highlight=False, markup=False)
                said = event.outcome.failed or _final(event.outcome.final)
                c.print(f"      {said}", soft_wrap=True, highlight=False, markup=False)
            elif isinstance(event, Warned):
                render_diagnostics([event.diagnostic], None, "", self.errors)
            elif isinstance(event, Comparison):
                return event
        raise RuntimeError("a comparison ends with its Comparison")  # (the engine always yields one)

    def sweep(self, events: Iterator[Any]) -> Swept:
        c = self.console
        for event in events:
            if isinstance(event, Spread):
                self._spread(event, "trials")
            elif isinstance(event, TrialBegun) and not self.spread:
                c.print(f"[{event.trial.index + 1}/{event.count}] {event.trial.name}", soft_wrap=True,
                        highlight=False, markup=False, end="")
            elif isinstance(event, TrialFinished):
                if self.spread:
                    c.print(f"[{event.result.trial.index + 1}/{event.count}] {event.result.trial.name}", soft_wrap=True,
                            highlight=False, markup=False, end="")
                c.print(f"  validation {event.result.score:.4f}" + (f"  (rank {event.rank})" if self.spread else ""),
                        highlight=False, markup=False)
            elif isinstance(event, Stopped):
                c.print("  stopped" if not self.spread else "a trial was stopped", highlight=False, markup=False)
            elif isinstance(event, Swept):
                if event.resumed:
                    c.print(f"{event.resumed} trials were finished before and were not run again",
                            highlight=False, markup=False)
                return event
        raise RuntimeError("a sweep ends with its Swept")


def _final(r: dict[str, Any]) -> str:
    if not r:
        return "no epoch finished"
    return (f"epoch {r['epoch']}, iteration {r['iteration']:,}: loss {r['loss']:.4f}, train acc "
            f"{r['train_acc']:.4f}, test acc {r['test_acc']:.4f}, {r['elapsed_s']:.1f} s")
