"""The processes that train one model together: one alone, or the ranks of an MPI launch
(`mpiexec -n N specc train ...`), each taking its contiguous share of every global batch."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from specc.errors import Diagnostic, UsageError

# What MPI launchers set in every process they start: MPICH's hydra (PMI_SIZE, MPI_LOCALNRANKS),
# Open MPI (OMPI_COMM_WORLD_SIZE), PMIx-based launchers (PMIX_SIZE; srun sets it too).
LAUNCHER_SIZES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS")
_ABORT_PAUSE_S = 1.0  # before MPI_Abort: time for the launcher to pass on the error printed


@dataclass(frozen=True)
class World:
    """This process's rank among `size` ranks. link carries the collectives (an MpiLink over mpi4py's
    COMM_WORLD, or a training.asranks.ThreadLink when threads of one process stand in for the ranks:
    `specc train --as-ranks N`); None when alone. comm is mpi4py's COMM_WORLD under MPI, else None."""

    rank: int = 0
    size: int = 1
    comm: Any = None
    link: Any = None

    @property
    def root(self) -> bool:
        """Rank 0: the one that writes the run folder and prints."""
        return self.rank == 0

    def bounds(self, n: int) -> tuple[int, int]:
        """[start, stop) of this rank's contiguous part of n samples: the first n % size ranks hold
        one more (as numpy.array_split cuts)."""
        base, extra = divmod(n, self.size)
        start = self.rank * base + min(self.rank, extra)
        return start, start + base + (self.rank < extra)

    def share(self, index: np.ndarray) -> np.ndarray:
        """This rank's contiguous part of a global batch's sample indices (sizes differ by at most one)."""
        if self.size == 1:
            return index
        start, stop = self.bounds(len(index))
        return index[start:stop]

    def broadcast(self, arrays: Mapping[str, np.ndarray]) -> None:
        """Overwrite every rank's arrays with rank 0's, in place."""
        if self.link is not None:
            for name in sorted(arrays):  # the same order on every rank
                self.link.broadcast(arrays[name])

    def gather(self, flat: np.ndarray) -> None:
        """Every rank's part of flat (bounds(len(flat))) copied to every rank, in place: one Allgatherv."""
        if self.link is not None:
            self.link.gather(flat, [World(r, self.size).bounds(len(flat)) for r in range(self.size)])

    def sum(self, flat: np.ndarray) -> None:
        """flat summed over the ranks, in place: one Allreduce."""
        if self.link is not None:
            self.link.sum(flat)

    def sum_part(self, flat: np.ndarray, out: np.ndarray) -> None:
        """This rank's part (bounds(len(flat))) of flat summed over the ranks, into out: one
        Reduce_scatter, half the traffic of an Allreduce (each rank receives only its part)."""
        if self.link is None:
            np.copyto(out, flat)
        else:
            self.link.sum_part(flat, out, [World(r, self.size).bounds(len(flat)) for r in range(self.size)])

    def end_all(self, code: int) -> None:
        """End every rank now (a failure that the others would wait for forever): MPI_Abort, which ends
        this process too; with thread ranks, the others leave their next collective."""
        if self.link is not None:
            self.link.end_all(code)


class MpiLink:
    """The collectives of an MPI launch, over mpi4py's COMM_WORLD."""

    def __init__(self, comm: Any):
        self.comm = comm

    def broadcast(self, a: np.ndarray) -> None:
        self.comm.Bcast(a, root=0)

    def gather(self, flat: np.ndarray, parts: list[tuple[int, int]]) -> None:
        from mpi4py import MPI

        counts, starts = [hi - lo for lo, hi in parts], [lo for lo, _ in parts]
        kind = {np.dtype(np.float64): MPI.DOUBLE, np.dtype(np.float32): MPI.FLOAT}[flat.dtype]
        self.comm.Allgatherv(MPI.IN_PLACE, [flat, counts, starts, kind])

    def sum(self, flat: np.ndarray) -> None:
        from mpi4py import MPI

        self.comm.Allreduce(MPI.IN_PLACE, flat, op=MPI.SUM)

    def sum_part(self, flat: np.ndarray, out: np.ndarray, parts: list[tuple[int, int]]) -> None:
        from mpi4py import MPI

        kind = {np.dtype(np.float64): MPI.DOUBLE, np.dtype(np.float32): MPI.FLOAT}[flat.dtype]
        self.comm.Reduce_scatter([flat, kind], [out, kind], recvcounts=[hi - lo for lo, hi in parts], op=MPI.SUM)

    def end_all(self, code: int) -> None:
        # The launcher passes on what the ranks print through its own pipes, and an abort ends it with
        # whatever it has not yet passed on: the error just reported must get through first (the
        # others wait for this rank meanwhile). Measured: lost in 4 of 8 aborts with both ranks on one
        # busy core without the pause.
        time.sleep(_ABORT_PAUSE_S)
        self.comm.Abort(code)
        os._exit(code)  # (MPICH's Abort may return before the launcher ends the process)


ALONE = World()


class Shares:
    """The rest of a training batch, for the layers that look across it (Layer.spans_batch), when the
    ranks each hold a contiguous share: it takes the place of numerics.WholeBatch (Network.batch),
    and the trainer tells it each global batch's size (split) before the step.

    - sum: an Allreduce: BatchNorm's per-feature sums (and counts) over the whole batch.
    - grad_sum: BatchNorm's backward sums of dy and dy * xn, an Allreduce: each rank's dy is its
      share's part of the whole batch's mean loss's gradient (the trainer scales its backward by its
      share), so the sums over the ranks are the whole batch's, and so is the rank's dx.
    - uniform: Dropout's uniforms. Every rank draws the whole batch's, from the same stream in the
      same order as one process does, and keeps its own rows: the masks are one process's exactly,
      and every rank's stream stays where one process's is (so a checkpoint, and a resume on any
      number of ranks, continues it). It costs each rank the draws of the whole batch: cheap beside
      the layers' arithmetic, and no split streams to keep equal to one.
    """

    def __init__(self, world: World):
        self.world = world
        self.start, self.stop, self.total = 0, 0, 0
        self._draws: dict[tuple, np.ndarray] = {}  # the whole batch's uniforms, one buffer per shape

    def split(self, n: int) -> None:
        """The next step's global batch has n samples."""
        self.total = n
        self.start, self.stop = self.world.bounds(n)

    def sum(self, a: np.ndarray) -> np.ndarray:
        self.world.sum(a)
        return a

    def grad_sum(self, a: np.ndarray) -> np.ndarray:
        self.world.sum(a)
        return a

    def uniform(self, rng: np.random.Generator, out: np.ndarray) -> np.ndarray:
        shape = (self.total, *out.shape[1:])
        key = (shape, out.dtype.str)
        whole = self._draws.get(key)
        if whole is None:
            whole = self._draws[key] = np.empty(shape, out.dtype)
        rng.random(out=whole, dtype=out.dtype)
        np.copyto(out, whole[self.start:self.stop])
        return out


def launched_size(environ: Mapping[str, str] | None = None) -> int:
    """How many processes an MPI launcher says it started (1 when none started this one)."""
    environ = os.environ if environ is None else environ
    for var in LAUNCHER_SIZES:
        try:
            return max(1, int(environ[var]))
        except (KeyError, ValueError):
            continue
    return 1


def detect(environ: Mapping[str, str] | None = None) -> World:
    """The world this process trains in: ALONE unless an MPI launcher started more than one process."""
    if launched_size(environ) == 1:
        return ALONE  # mpi4py is not even imported: importing it would initialise MPI
    try:
        from mpi4py import MPI
    except ImportError:
        raise UsageError([Diagnostic(
            "this process was started by an MPI launcher with several processes, but mpi4py is not installed",
            None, "no-mpi", hint='install it with: pip install "specc[mpi]"; without it every process '
                                 'would train alone, all writing one run folder')]) from None
    comm = MPI.COMM_WORLD
    if comm.Get_size() == 1:
        return ALONE
    return World(comm.Get_rank(), comm.Get_size(), comm, MpiLink(comm))


def refuse_empty_shares(net: Any, world: World, smallest_batch: int) -> None:
    """UsageError when a batch would leave a rank without samples in a network with a layer that looks
    across the batch: that rank's share of its sums and draws would be missing (the ranks would wait
    for each other forever). Networks without such layers train on any batch."""
    if world.size == 1 or smallest_batch >= world.size:
        return
    for c in net.checked.layers:
        if c.layer.spans_batch:
            raise UsageError([Diagnostic(
                f"{c.layer.describe()} on {world.size} MPI ranks needs at least {world.size} samples in every "
                f"batch, one per rank; this run has batches of {smallest_batch}", c.spec.span,
                "batch-below-ranks", f"layer {c.index + 1}",
                f"use --batch {world.size} or more (and a training set whose last batch has that many), "
                "or fewer ranks")], net.source)
