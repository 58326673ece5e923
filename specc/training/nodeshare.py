"""MPI ranks on one machine share their gradients and parameters in memory instead of sending them.

When every rank of a launch runs on the same machine (MPI's shared-memory split of COMM_WORLD holds
them all), the trainer lays out, in one MPI shared-memory window:

- the flat parameter array, one copy that every rank's network views, and
- one flat gradient array per rank (its gradients, then the step's loss and stop flag).

A step is then: each rank's backward writes its own gradient array (its share's part of the global
batch's mean loss's gradient); a barrier; each rank sums its part of the parameters' gradient (the
part it updates, World.bounds) from every rank's array, and the loss and stop flag from all of them;
it updates
its part of the parameters in place; a barrier, after which every rank sees every part. Nothing is
sent: the Reduce_scatter becomes reads of the others' memory, the Allgatherv of the updated
parameters disappears, and the update divides over the ranks at any size.

The arithmetic is the message path's: the ranks' gradients summed in rank order (with 2 ranks MPI's
sum, a + b being b + a), so a run equals the message path's bit for bit.
Ranks on several machines, a machine whose shared memory (/dev/shm) has no room for the window, or
SPECC_MPI_SHARED=0 keep the message path (training.world).
"""
from __future__ import annotations

import os
from typing import Any, Mapping

import numpy as np

from specc.training.world import World

_ALIGN = 16  # elements between the starts of the arrays: 64 bytes of float32, a cache line


def _padded(n: int) -> int:
    return -(-n // _ALIGN) * _ALIGN


def _room(nbytes: int, folder: str = "/dev/shm") -> bool:
    """Whether the machine's shared memory (where MPI libraries map their windows) has room for
    nbytes with some to spare; True where there is no such folder to ask."""
    try:
        st = os.statvfs(folder)
    except OSError:
        return True
    return st.f_bavail * st.f_frsize >= 2 * nbytes


class NodeShare:
    """The window's arrays as this rank sees them, and the step's two synchronisations."""

    def __init__(self, world: World, win: Any, memory: np.ndarray, params: int, extra: int):
        self.world, self._win = world, win
        self.values = memory[:params]
        at, width = _padded(params), _padded(params + extra)
        self.segments = [memory[at + r * width: at + r * width + params + extra] for r in range(world.size)]
        self.mine = self.segments[world.rank]
        self.lo, self.hi = world.bounds(params)

    @classmethod
    def open(cls, world: World, params: int, extra: int, dtype: np.dtype,
             environ: Mapping[str, str] | None = None) -> NodeShare | None:
        """The shared window of an MPI launch whose ranks are all on this machine; None alone, for
        thread ranks (--as-ranks), for ranks on several machines, or when SPECC_MPI_SHARED=0.
        Collective: every rank of the launch calls it."""
        environ = os.environ if environ is None else environ
        if world.comm is None or world.size == 1 or environ.get("SPECC_MPI_SHARED", "1") == "0":
            return None
        from mpi4py import MPI

        item = np.dtype(dtype).itemsize
        total = _padded(params) + world.size * _padded(params + extra)
        node = world.comm.Split_type(MPI.COMM_TYPE_SHARED)
        try:
            # all on this machine, with room in its shared memory (a container's /dev/shm may be small)
            fits = node.Get_size() == world.size and (world.rank != 0 or _room(total * item))
            if not world.comm.allreduce(fits, op=MPI.LAND):
                return None
            # rank 0 allocates the whole window; the others map it (Shared_query)
            win = MPI.Win.Allocate_shared(total * item if world.rank == 0 else 0, item, comm=node)
        finally:
            node.Free()
        buf, _ = win.Shared_query(0)
        memory = np.frombuffer(buf, dtype=dtype, count=total)  # type: ignore[call-overload]
        win.Lock_all(MPI.MODE_NOCHECK)  # a passive epoch for the whole run: Sync orders the accesses
        share = cls(world, win, memory, params, extra)
        share.mine[:] = 0
        return share

    def barrier(self) -> None:
        """Every rank's writes so far visible to every rank (after the update, before the next step)."""
        self._meet()

    def _meet(self) -> None:
        # MPI's unified memory model: a Sync, the barrier, a Sync
        self._win.Sync()
        self.world.comm.Barrier()
        self._win.Sync()

    def sum_part(self, out: np.ndarray) -> tuple[float, bool]:
        """After every rank wrote its gradients (its share's part of the batch's), loss * share and stop
        flag into its array (mine): out = this rank's part of the gradients summed over the ranks in
        rank order; the summed loss, and whether any rank asked to stop."""
        self._meet()
        lo, hi = self.lo, self.hi
        first, *rest = self.segments
        loss, stop = first[-2], bool(first[-1] > 0)
        if not rest:
            np.copyto(out, first[lo:hi])
        for k, seg in enumerate(rest):
            np.add(first[lo:hi] if k == 0 else out, seg[lo:hi], out=out)
            loss = loss + seg[-2]  # in the array's dtype, as MPI sums it
            stop = stop or bool(seg[-1] > 0)
        return float(loss), stop
