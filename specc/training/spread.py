"""Whole runs spread over the ranks of an MPI launch (`mpiexec -n N specc sweep|compare`): each rank
trains its share of the runs, each run alone on its rank (a world of one inside it), and rank 0
gathers what the runs report as they finish. The one engine behind both commands' scale-out; alone,
it runs every run here, in order."""
from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence, TypeVar

from specc.errors import SpeccError
from specc.training.world import ALONE, World

T = TypeVar("T")
R = TypeVar("R")

# Message tags: an event a run forwards to rank 0; a rank has finished its share; stop after this step
# (either way: a rank asked to stop tells rank 0, which tells every other rank); a rank's run failed.
EVENT, DONE, STOP, FAILED = 21, 22, 23, 24
POLL_S = 0.05  # how often a rank looks for messages while it trains (between steps)


@dataclass(frozen=True)
class Spread:
    """The first event on rank 0 of a launch of several ranks: how many runs each rank took."""

    ranks: int
    shares: tuple[int, ...]  # runs per rank, rank 0 first


def share(items: Sequence[T], rank: int, size: int) -> list[T]:
    """Rank `rank`'s runs: every size-th of those still to do, from its rank on (runs of one kind cost
    about the same, so turns spread them evenly; the order among a rank's own runs is kept)."""
    return list(items[rank::size])


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
    """The events of one(item, stop) for each of this rank's items, in order; no new item starts once
    stop() says so. On rank 0 of several, the events that other ranks' runs forward (those of the types
    in `forward`: a run's result, its warnings, a stop) come in among its own as they arrive, after a
    Spread event, and the generator ends once every rank has finished its share."""
    if world.size == 1:
        for item in items:
            if stop():
                return
            yield from one(item, stop)
        return
    yield from (_Root if world.root else _Rank)(world, stop).run(items, one, forward)


class _Rank:
    """A rank other than 0: runs its share and sends rank 0 what it must know."""

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

    def run(self, items: Sequence[T], one: Callable[[T, Callable[[], bool]], Iterator[Any]],
            forward: tuple[type, ...]) -> Iterator[Any]:
        comm = self.world.comm
        try:
            for item in share(items, self.world.rank, self.world.size):
                if self.stopping():
                    break
                for event in one(item, self.stopping):
                    if isinstance(event, forward):
                        comm.send(event, dest=0, tag=EVENT)
                    yield event
        except SpeccError as e:  # rank 0 reports it and ends the launch
            comm.send(_pack(e), dest=0, tag=FAILED)
            raise
        comm.send(None, dest=0, tag=DONE)


class _Root:
    """Rank 0: runs its share, and between its steps takes in what the other ranks send."""

    def __init__(self, world: World, stop: Callable[[], bool]):
        self.world, self.stop = world, stop
        self.running = set(range(1, world.size))  # ranks that have not finished their share
        self.stopped = False
        self.inbox: deque[Any] = deque()
        self.polled = 0.0

    def _stop_all(self) -> None:
        if not self.stopped:
            self.stopped = True
            for rank in self.running:
                self.world.comm.send(None, dest=rank, tag=STOP)

    def _take(self) -> None:
        """Every message waiting, into the inbox or the bookkeeping."""
        from mpi4py import MPI

        comm, status = self.world.comm, MPI.Status()
        while comm.iprobe(source=MPI.ANY_SOURCE, tag=MPI.ANY_TAG, status=status):
            tag, rank = status.Get_tag(), status.Get_source()
            message = comm.recv(source=rank, tag=tag)
            if tag == EVENT:
                self.inbox.append(message)
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
        size = self.world.size
        yield Spread(size, tuple(len(share(items, r, size)) for r in range(size)))
        for item in share(items, 0, size):
            if self.stopping():
                break
            for event in one(item, self.stopping):
                yield event
                yield from self._drain()
        while self.running:  # polled, not a blocking receive, so that Ctrl-C is still seen here
            self.stopping(wait=True)
            yield from self._drain()
            time.sleep(0.005)


def _pack(e: SpeccError | None) -> tuple[type, tuple, Any, str | None] | None:
    """A SpeccError as plain data that pickles (its constructor does not take its own args back)."""
    return None if e is None else (type(e), e.diagnostics, e.source, e.name)


def _unpack(packed: tuple[type, tuple, Any, str | None] | None) -> SpeccError | None:
    if packed is None:
        return None
    kind, diagnostics, source, name = packed
    return kind(diagnostics, source, name)
