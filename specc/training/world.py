"""The processes that train one model together: one alone, or the ranks of an MPI launch
(`mpiexec -n N specc train ...`), each taking its contiguous share of every global batch."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from specc.errors import Diagnostic, UsageError

# What MPI launchers set in every process they start: MPICH's hydra (PMI_SIZE, MPI_LOCALNRANKS),
# Open MPI (OMPI_COMM_WORLD_SIZE), PMIx-based launchers (PMIX_SIZE; srun sets it too).
LAUNCHER_SIZES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS")


@dataclass(frozen=True)
class World:
    """This process's rank among `size` processes; comm is mpi4py's COMM_WORLD, None when alone."""

    rank: int = 0
    size: int = 1
    comm: Any = None

    @property
    def root(self) -> bool:
        """Rank 0: the one that writes the run folder and prints."""
        return self.rank == 0

    def share(self, index: np.ndarray) -> np.ndarray:
        """This rank's contiguous part of a global batch's sample indices (sizes differ by at most one)."""
        if self.size == 1:
            return index
        return np.array_split(index, self.size)[self.rank]

    def broadcast(self, arrays: Mapping[str, np.ndarray]) -> None:
        """Overwrite every rank's arrays with rank 0's, in place."""
        if self.comm is not None:
            for name in sorted(arrays):  # the same order on every rank
                self.comm.Bcast(arrays[name], root=0)

    def sum(self, flat: np.ndarray) -> None:
        """flat summed over the ranks, in place: one Allreduce."""
        if self.comm is not None:
            from mpi4py import MPI

            self.comm.Allreduce(MPI.IN_PLACE, flat, op=MPI.SUM)


ALONE = World()


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
    return World(comm.Get_rank(), comm.Get_size(), comm)


def refuse_unsupported(net: Any, world: World) -> None:
    """UsageError for a network whose layers cannot yet train data-parallel (BatchNorm, Dropout)."""
    if world.size == 1:
        return
    for c in net.checked.layers:
        why = c.layer.not_data_parallel
        if why is not None:
            raise UsageError([Diagnostic(
                f"{c.layer.describe()} cannot train on {world.size} MPI ranks yet: {why}", c.spec.span,
                "not-data-parallel", f"layer {c.index + 1}",
                "train it in one process (without mpiexec) for now")], net.source)
