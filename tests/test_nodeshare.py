"""training.nodeshare without MPI: the window's layout, and each rank's part of the weighted sum in
rank order (the MPI runs that use it are in test_mpi.py)."""
from __future__ import annotations

import numpy as np

from specc.training.nodeshare import NodeShare, _padded
from specc.training.world import ALONE, World


class _Quiet:
    """What NodeShare calls of an MPI window and communicator, doing nothing (one process)."""

    def __init__(self):
        self.calls = 0

    def Sync(self):  # noqa: N802 -- mpi4py's names
        self.calls += 1

    def Barrier(self):  # noqa: N802
        self.calls += 1


def _shares(size: int, params: int, extra: int = 2):
    memory = np.full(_padded(params) + size * _padded(params + extra), np.nan, np.float32)
    quiet = _Quiet()
    return [NodeShare(World(r, size, quiet), quiet, memory, params, extra) for r in range(size)], memory


def test_the_arrays_do_not_overlap_and_start_on_cache_lines():
    shares, memory = _shares(3, 1001)
    first = shares[0]
    arrays = [first.values, *first.segments]
    starts = [a.__array_interface__["data"][0] - memory.__array_interface__["data"][0] for a in arrays]
    assert all(s % 64 == 0 for s in starts)
    assert [len(a) for a in arrays] == [1001, 1003, 1003, 1003]
    for a, b in zip(arrays, arrays[1:]):
        assert not np.shares_memory(a, b)
    assert all(np.shares_memory(s.mine, first.segments[s.world.rank]) for s in shares)


def test_each_rank_sums_its_part_in_rank_order():
    rng = np.random.default_rng(0)
    shares, _ = _shares(3, 1001)
    grads = [rng.standard_normal(1001).astype(np.float32) for _ in range(3)]
    losses = [np.float32(0.5 * 3 / 7), np.float32(0.25 * 2 / 7), np.float32(2.0 * 2 / 7)]  # loss * share
    for s, g, loss in zip(shares, grads, losses):
        s.mine[:-2] = g
        s.mine[-2] = loss
        s.mine[-1] = 0.0
    shares[2].mine[-1] = 1.0  # rank 2 was asked to stop
    whole = np.empty(1001, np.float32)
    for s in shares:
        out = np.empty(s.hi - s.lo, np.float32)
        loss, stop = s.sum_part(out)
        whole[s.lo:s.hi] = out
        assert stop
        assert loss == float((losses[0] + losses[1]) + losses[2])
    np.testing.assert_array_equal(whole, (grads[0] + grads[1]) + grads[2])  # bit for bit
    assert [s.hi - s.lo for s in shares] == [334, 334, 333]


def test_one_rank_copies_its_own():
    (only,), _ = _shares(1, 10)
    only.mine[:] = np.arange(12)
    out = np.empty(10, np.float32)
    assert only.sum_part(out) == (10.0, True)
    np.testing.assert_array_equal(out, np.arange(10))


def test_no_shared_memory_alone_for_thread_ranks_or_when_turned_off():
    assert NodeShare.open(ALONE, 10, 2, np.dtype(np.float32)) is None
    assert NodeShare.open(World(0, 2, None, object()), 10, 2, np.dtype(np.float32)) is None  # --as-ranks
    assert NodeShare.open(World(0, 2, _Quiet(), object()), 10, 2, np.dtype(np.float32),
                          {"SPECC_MPI_SHARED": "0"}) is None


def test_room_is_asked_of_the_shared_memory_folder(tmp_path):
    from specc.training.nodeshare import _room

    assert _room(1, str(tmp_path))
    assert not _room(1 << 62, str(tmp_path))  # more than any disk: the ranks exchange messages instead
    assert _room(1 << 62, str(tmp_path / "absent"))  # nothing to ask: MPI's library decides
