"""Whole runs spread over the ranks of an MPI launch (`mpiexec -n N specc sweep|compare`): each rank
takes the next run still to do whenever it has finished one (rank 0 hands them out, in order), trains
it alone on its rank (a world of one inside it), and rank 0 gathers what the runs report as they
finish. Runs that take unequal times (other batch sizes, a diverging trial stopped early) so keep
every rank busy until the last ones. The one engine behind both commands' scale-out; alone, it runs
every run here, in order."""
from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence, TypeVar

from specc.errors import SpeccError
from specc.training.world import ALONE, World

T = TypeVar("T")
R = TypeVar("R")

# Message tags: an event a run forwards to rank 0; a rank has finished its runs; stop after this step
# (either way: a rank asked to stop tells rank 0, which tells every other rank); a rank's run failed;
# a rank asks for its next run; rank 0's answer (the run's index, or None: no more).
EVENT, DONE, STOP, FAILED, WANT, TAKE = 21, 22, 23, 24, 25, 26
POLL_S = 0.05  # how often a rank looks for messages while it trains (between steps)


@dataclass(frozen=True)
class Spread:
    """The first event on rank 0 of a launch of several ranks: the runs to do, the ranks to do them."""

    ranks: int
    runs: int


def on_root(world: World, fn: Callable[[], R]) -> R:
    """fn() done by rank 0 alone (a folder checked and claimed, a plan saved), its value given to every
    rank; a SpeccError it raises is raised on every rank, so that no rank goes on without the others."""
    value: Any = None
    failure: SpeccError | None = None
    if world.root:
        try:
            value = fn()
        except SpeccError as e:
            failure = e
    if world.size > 1:
        value, packed = world.comm.bcast((value, _pack(failure)), root=0)
        failure = _unpack(packed)
    if failure is not None:
        raise failure
    return value


def run(items: Sequence[T], one: Callable[[T, Callable[[], bool]], Iterator[Any]], stop: Callable[[], bool],
        forward: tuple[type, ...], world: World = ALONE) -> Iterator[Any]:
    """The events of one(item, stop) for each item this rank runs, in order; no new item starts once
    stop() says so. On rank 0 of several, the events that other ranks' runs forward (those of the types
    in `forward`: a run's result, its warnings, a stop) come in among its own as they arrive, after a
    Spread event, and the generator ends once every rank has finished its runs."""
    if world.size == 1:
        for item in items:
            if stop():
                return
            yield from one(item, stop)
        return
    engine = _Root(world, stop, len(items)) if world.root else _Rank(world, stop)
    yield from engine.run(items, one, forward)


class _Rank:
    """A rank other than 0: asks rank 0 for a run, trains it, asks again; sends rank 0 what it must know."""

    def __init__(self, world: World, stop: Callable[[], bool]):
        self.world, self.stop = world, stop
        self.stopped = False  # rank 0 asked this rank to stop, or this rank told it that it stops
        self.polled = 0.0

    def stopping(self) -> bool:
        if self.stopped:
            return True
        if self.stop():
            self.stopped = True
            self.world.comm.send(None, dest=0, tag=STOP)  # rank 0 tells the others
            return True
        now = time.monotonic()
        if now - self.polled >= POLL_S:
            self.polled = now
            if self.world.comm.iprobe(source=0, tag=STOP):
                self.world.comm.recv(source=0, tag=STOP)
                self.stopped = True
        return self.stopped

    def _next(self) -> int | None:
        """The index of this rank's next run, None when there is none (or the launch stops). Rank 0
        answers every request, between its own steps; this rank polls for the answer, so that its own
        Ctrl-C is still seen while it waits."""
        comm = self.world.comm
        comm.send(None, dest=0, tag=WANT)
        while not comm.iprobe(source=0, tag=TAKE):
            self.stopping()
            time.sleep(0.002)
        index = comm.recv(source=0, tag=TAKE)
        return None if self.stopping() else index

    def run(self, items: Sequence[T], one: Callable[[T, Callable[[], bool]], Iterator[Any]],
            forward: tuple[type, ...]) -> Iterator[Any]:
        comm = self.world.comm
        try:
            while not self.stopping():
                index = self._next()
                if index is None:
                    break
                for event in one(items[index], self.stopping):
                    if isinstance(event, forward):
                        comm.send(event, dest=0, tag=EVENT)
                    yield event
        except SpeccError as e:  # rank 0 reports it and ends the launch
            comm.send(_pack(e), dest=0, tag=FAILED)
            raise
        comm.send(None, dest=0, tag=DONE)


class _Root:
    """Rank 0: hands the runs out in order (taking the next for itself whenever it has finished one),
    and between its steps answers the other ranks and takes in what they send."""

    def __init__(self, world: World, stop: Callable[[], bool], count: int):
        self.world, self.stop = world, stop
        self.running = set(range(1, world.size))  # ranks that have not finished their runs
        self.stopped = False
        self.inbox: deque[Any] = deque()
        self.polled = 0.0
        self.count, self.handed = count, 0  # runs in all, runs handed out so far

    def _stop_all(self) -> None:
        if not self.stopped:
            self.stopped = True
            for rank in self.running:
                self.world.comm.send(None, dest=rank, tag=STOP)

    def _hand_out(self) -> int | None:
        if self.stopped or self.handed == self.count:
            return None
        self.handed += 1
        return self.handed - 1

    def _take(self) -> None:
        """Every message waiting, into the inbox or the bookkeeping."""
        from mpi4py import MPI

        comm, status = self.world.comm, MPI.Status()
        while comm.iprobe(source=MPI.ANY_SOURCE, tag=MPI.ANY_TAG, status=status):
            tag, rank = status.Get_tag(), status.Get_source()
            message = comm.recv(source=rank, tag=tag)
            if tag == EVENT:
                self.inbox.append(message)
            elif tag == WANT:
                comm.send(self._hand_out(), dest=rank, tag=TAKE)
            elif tag == DONE:
                self.running.discard(rank)
            elif tag == STOP:
                self._stop_all()
            elif tag == FAILED:
                failure = _unpack(message)
                if failure is not None:
                    raise failure

    def stopping(self, wait: bool = False) -> bool:
        if self.stop():
            self._stop_all()
        now = time.monotonic()
        if wait or now - self.polled >= POLL_S:
            self.polled = now
            self._take()
        return self.stopped

    def _drain(self) -> Iterator[Any]:
        while self.inbox:
            yield self.inbox.popleft()

    def run(self, items: Sequence[T], one: Callable[[T, Callable[[], bool]], Iterator[Any]],
            forward: tuple[type, ...]) -> Iterator[Any]:
        yield Spread(self.world.size, len(items))
        self.stopping(wait=True)  # the first requests are answered before this rank's first run
        while not self.stopping():
            index = self._hand_out()
            if index is None:
                break
            for event in one(items[index], self.stopping):
                yield event
                yield from self._drain()
            self.stopping(wait=True)  # a rank waiting for its next run is answered now
            yield from self._drain()
        while self.running:  # polled, not a blocking receive, so that Ctrl-C is still seen here
            self.stopping(wait=True)
            yield from self._drain()
            time.sleep(0.002)


def _pack(e: SpeccError | None) -> tuple[type, tuple, Any, str | None] | None:
    """A SpeccError as plain data that pickles (its constructor does not take its own args back)."""
    return None if e is None else (type(e), e.diagnostics, e.source, e.name)


def _unpack(packed: tuple[type, tuple, Any, str | None] | None) -> SpeccError | None:
    if packed is None:
        return None
    kind, diagnostics, source, name = packed
    return kind(diagnostics, source, name)
