"""Threads of one process standing in for the ranks of an MPI launch: `specc train --as-ranks N`
computes every step as N ranks would, their shares and their sums, so that one process reproduces an
MPI run (float32 included, where rounding makes any other summation order drift away within a few
hundred steps), and an MPI run can be checked, or debugged, without MPI."""
from __future__ import annotations

import threading
from typing import Any, Callable

import numpy as np

from specc.training.world import World


class Ended(Exception):
    """Raised in a thread rank's collective when another rank ended the group (ThreadGroup.fail)."""


class ThreadGroup:
    """Threads of one process standing in for the ranks of an MPI launch (`specc train --as-ranks N`):
    each runs what its rank would (its share of every batch, its sums), and their collectives compute
    what MPI's do, in rank order. With two ranks that is MPI's arithmetic bit for bit (a + b is b + a),
    so one process reproduces a 2-rank run exactly, float32 included; with more, MPI's own reduction
    order (which its library picks by message size) may round differently.

    A rank that fails ends the group: every other rank's next collective raises that failure (or
    Ended, for the ranks that did not fail first), so no thread waits forever."""

    def __init__(self, size: int):
        self.size = size
        self.slots: list[Any] = [None] * size
        self.failure: BaseException | None = None
        self._barrier = threading.Barrier(size)

    def worlds(self) -> list[World]:
        return [World(r, self.size, None, ThreadLink(self, r)) for r in range(self.size)]

    def wait(self) -> None:
        try:
            self._barrier.wait()
        except threading.BrokenBarrierError:
            raise (self.failure if self.failure is not None else Ended()) from None

    def fail(self, error: BaseException) -> None:
        """End the group with `error`: the other ranks' collectives raise it."""
        if self.failure is None:
            self.failure = error
        self._barrier.abort()


class ThreadLink:
    """One thread rank's collectives: each deposits its array, and after a barrier every rank reads
    the others' (then a second barrier, so that no rank changes its array while another reads it)."""

    def __init__(self, group: ThreadGroup, rank: int):
        self.group, self.rank = group, rank

    def _exchange(self, a: np.ndarray) -> list[np.ndarray]:
        self.group.slots[self.rank] = a
        self.group.wait()
        return list(self.group.slots)

    def broadcast(self, a: np.ndarray) -> None:
        root = self._exchange(a)[0]
        copy = None if self.rank == 0 else root.copy()
        self.group.wait()
        if copy is not None:
            np.copyto(a, copy)

    def gather(self, flat: np.ndarray, parts: list[tuple[int, int]]) -> None:
        arrays = self._exchange(flat)
        pieces = {r: arrays[r][lo:hi].copy() for r, (lo, hi) in enumerate(parts) if r != self.rank}
        self.group.wait()
        for r, piece in pieces.items():
            lo, hi = parts[r]
            flat[lo:hi] = piece

    def sum(self, flat: np.ndarray) -> None:
        arrays = self._exchange(flat)
        total = arrays[0].copy()
        for a in arrays[1:]:
            total += a
        self.group.wait()
        np.copyto(flat, total)

    def sum_part(self, flat: np.ndarray, out: np.ndarray, parts: list[tuple[int, int]]) -> None:
        lo, hi = parts[self.rank]
        arrays = self._exchange(flat)
        np.copyto(out, arrays[0][lo:hi])  # (out is this rank's alone: written before the second barrier)
        for a in arrays[1:]:
            out += a[lo:hi]
        self.group.wait()

    def end_all(self, code: int) -> None:
        self.group.fail(Ended(f"rank {self.rank} ended the run (exit status {code})"))


class Companions:
    """Ranks 1 .. N-1 of a thread group, each building its trainer (`build(world)`, as every MPI rank
    calls specc.api.training) and running it to its end in a thread of its own; rank 0's world is
    `root`, for the caller's trainer, which prints and writes."""

    def __init__(self, size: int, build: Callable[[World], Any]):
        self.group = ThreadGroup(size)
        worlds = self.group.worlds()
        self.root = worlds[0]
        self.threads = [threading.Thread(target=self._rank, args=(w, build), name=f"specc rank {w.rank}",
                                         daemon=True) for w in worlds[1:]]
        for t in self.threads:
            t.start()

    def _rank(self, world: World, build: Callable[[World], Any]) -> None:
        try:
            trainer = build(world)
            try:
                for _ in trainer.run():
                    pass
            finally:
                trainer.close()
        except Ended:
            pass
        except BaseException as e:  # rank 0 raises it at its next collective
            self.group.fail(e)

    def close(self, timeout: float = 30.0) -> None:
        """End the group (a rank still waiting leaves its collective) and wait for the threads. After a
        whole run they have passed their last collective already, and end by themselves."""
        self.group.fail(Ended("rank 0 closed the run"))
        for t in self.threads:
            t.join(timeout)
