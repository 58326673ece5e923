"""The training commands: train (on this process, the ranks of an MPI launch, or threads standing in for
them), compare and sweep (their runs spread over the ranks); each calls the API and hands its events to
a view (specc.cli.trainview)."""
from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator, TypeVar

from rich.console import Console

from specc import api
from specc.cli import views
from specc.cli.trainview import ExperimentView, StopFlag, TrainView
from specc.diagnostics import render
from specc.errors import SpeccError
from specc.training.world import World, detect

R = TypeVar("R")

_RANK_ERROR_GRACE_S = 5.0  # an MPI rank's setup error waits this long for rank 0 to report and end the run


def train(args, stdout: Console, stderr: Console) -> int:
    flags = {"epochs": args.epochs, "iters": args.iters, "batch": args.batch, "lr": args.lr,
             "optimizer": args.optimizer, "seed": args.seed, "dtype": args.dtype}
    world = detect()  # the ranks of `mpiexec -n N specc train`, or this process alone
    # Every rank reads the same files, so rank 0 meets the same errors (and the lock's) and reports them.
    with _ranks_fail_together(world, stderr):
        trainer = api.training(args.file, out=args.out, resume=args.resume, data=args.data,
                               max_memory=args.max_memory, init_from=args.init_from, world=world,
                               as_ranks=args.as_ranks, **flags)
    try:
        if not world.root:  # the other ranks train silently; rank 0 prints and writes
            with StopFlag() as stop:
                try:
                    for _ in trainer.run(stop):
                        pass
                except SpeccError as e:  # met by every rank (a non-finite loss is reduced): rank 0 reports it
                    return e.exit_code
            return 0
        views.warn(trainer.net.checked, trainer.net.source, stderr)
        code = TrainView(trainer, args.file, stdout, stderr).run()
        if code != 0 and world.size > 1 and not trainer.stopped:
            # A failure of rank 0 alone (a checkpoint it cannot write) would leave the other ranks waiting
            # for it in their next Allreduce forever: the error reported, end them all.
            stdout.file.flush()
            stderr.file.flush()
            world.end_all(code)
        return code
    finally:
        trainer.close()


def compare(args, stdout: Console, stderr: Console) -> int:
    world = detect()  # under `mpiexec -n N specc compare`, each rank trains its share of the variants
    with _ranks_fail_together(world, stderr), StopFlag() as stop:
        events = api.comparison(args.files, out=args.out, data=args.data, optimizer=args.optimizer,
                                init=args.init, weight_decay=args.weight_decay, lr=args.lr, stop=stop,
                                world=world, **_experiment(args))
        result = _on_root(world, events, ExperimentView(stdout, stderr).compare)
        if result is None:
            return 0
    stdout.print(views.compare_table(result, args.loss_at))
    if result.grid is not None:
        stdout.print(f"one panel per setting, a line per spec: {result.grid}", soft_wrap=True)
    return _closing(result.folder, result.plot, result.interrupted, "compare.json", stdout, stderr,
                    "the comparison was stopped; the variants trained so far are in the table")


def sweep(args, stdout: Console, stderr: Console) -> int:
    world = detect()  # under `mpiexec -n N specc sweep`, each rank trains its share of the trials
    with _ranks_fail_together(world, stderr), StopFlag() as stop:
        events = api.sweeping(args.file, out=args.out, resume=args.resume, data=args.data, lr=args.lr,
                              weight_decay=args.weight_decay, trials=args.trials, validation=args.validation,
                              top=args.top, stop=stop, world=world, optimizer=args.optimizer,
                              seed_per_trial=args.seed_per_trial, **_experiment(args))
        result = _on_root(world, events, ExperimentView(stdout, stderr).sweep)
        if result is None:
            return 0
    stdout.print(views.sweep_table(result, args.top))
    if result.best is not None:
        stdout.print(f"the best settings, as a train section: {result.best}")
    return _closing(result.folder, result.plot, result.interrupted, "trials.jsonl", stdout, stderr,
                    f"the sweep was stopped; continue it with: specc sweep --resume {result.folder}")


def _on_root(world: World, events: Iterator[Any], view: Callable[[Iterator[Any]], R]) -> R | None:
    """Rank 0 shows the events (it gathers, prints and writes the experiment): what the view returns;
    another rank only runs its share of them: None."""
    if world.root:
        return view(events)
    for _ in events:
        pass
    return None


@contextmanager
def _ranks_fail_together(world: World, stderr: Console) -> Iterator[None]:
    """Under MPI, an error on any rank ends every rank (none waits forever for another): rank 0 reports
    it (a rank's failure reaches rank 0 as a message), then ends the launch; another rank gives it time."""
    try:
        yield
    except SpeccError as e:
        if world.size > 1:
            if world.root:
                render(e, stderr)
                stderr.file.flush()
            else:
                time.sleep(_RANK_ERROR_GRACE_S)
            world.end_all(e.exit_code)
        raise


def _experiment(args) -> dict:
    return {"epochs": args.epochs, "iters": args.iters, "batch": args.batch, "seed": args.seed,
            "train_size": args.train_size, "eval_sample": args.eval_sample}


def _closing(folder, png, interrupted: bool, summary: str, stdout: Console, stderr: Console, stopped: str) -> int:
    stdout.print(f"saved {folder}/{summary}" + (f" and {png}" if png else " (no plot: matplotlib is missing)"),
                 soft_wrap=True)
    if interrupted:
        stderr.print(stopped, style="bold yellow", soft_wrap=True)
        return 1
    return 0
