"""The ranks' side of a training step: how the gradients that MPI ranks (or thread ranks, --as-ranks)
computed on their shares of a batch become the whole batch's, and how the updated parameters reach
every rank.

- Every rank's backward computes its share's part of the global batch's mean loss's gradient (its
  own mean loss's, scaled by its share of the samples), into one flat array followed by two values:
  the loss times the share, and whether the rank was asked to stop.
- Exchanging messages (ranks on several machines, or SPECC_MPI_SHARED=0): one Allreduce sums the
  array; from scaling.SHARD_FROM parameters the update is sharded instead: a Reduce_scatter gives
  each rank its part of the gradient (half the traffic), an Allreduce the last two values, each rank
  updates its part, and an Allgatherv gives every rank all of the parameters.
- Sharing memory (ranks all on one machine, training.nodeshare): each rank sums its part from every
  rank's array and updates it in place; a barrier after the update. Every update is sharded.

The arithmetic is the same either way (sums in rank order), so a run is bit for bit the same.
"""
from __future__ import annotations

import numpy as np

from specc.network import Network
from specc.scaling import SHARD_FROM
from specc.training.nodeshare import NodeShare
from specc.training.optimizers import Optimizer
from specc.training.world import World


class Ranks:
    """One rank's gradient buffer and its part of the update, for a run on world.size ranks."""

    def __init__(self, net: Network, world: World):
        self.world = world
        self.node = NodeShare.open(world, net.checked.parameter_count, 2, net.dtype)
        # the gradients, then this step's loss and stop flag (None alone: nothing to sum)
        self.flat = (net.flatten_grads(extra=2, into=self.node.mine) if self.node is not None
                     else net.flatten_grads(extra=2) if world.size > 1 else None)
        world.broadcast({**{p.name: p.value for p in net.parameters()}, **net.state})
        if self.node is not None:  # rank 0's values, as every rank's after the broadcast
            net.place_params(self.node.values, copy=world.root)
            self.node.barrier()
        self._net, self._shared = net, self.node is not None
        self.part_grad: np.ndarray | None = None  # this rank's part of the summed gradient, sharded
        self._gather: np.ndarray | None = None  # the flat parameters to Allgatherv after each update

    def shard(self, optimizer: Optimizer) -> None:
        """Give each rank its part of the update (and of the optimizer's state), where that pays."""
        flat = optimizer.flat_values
        if self.world.size == 1 or flat is None or (len(flat) < SHARD_FROM and self.node is None):
            return
        lo, hi = self.world.bounds(len(flat))
        self.part_grad = np.zeros(hi - lo, flat.dtype)
        if not optimizer.shard(lo, hi, self.part_grad):
            self.part_grad = None
        if self.node is not None and self.part_grad is None:  # every rank would update the one copy
            raise AssertionError("parameters in shared memory need a sharded update")
        if self.part_grad is not None and self.node is None:
            self._gather = flat

    @property
    def sharded(self) -> bool:
        return self.part_grad is not None

    def sum(self, loss_share: float, stop: bool) -> tuple[float, bool]:
        """After this rank's backward: the whole batch's gradient (sharded: this rank's part of it), its
        loss, and whether any rank asked to stop."""
        flat = self.flat
        assert flat is not None
        flat[-2] = loss_share
        flat[-1] = float(stop)
        if self.node is not None and self.part_grad is not None:  # shared memory: read, not sent
            return self.node.sum_part(self.part_grad)
        if self.part_grad is not None:
            self.world.sum_part(flat[:-2], self.part_grad)
            self.world.sum(flat[-2:])
        else:
            self.world.sum(flat)
        return float(flat[-2]), bool(flat[-1] > 0)

    def updated(self) -> None:
        """After the update: every rank's part of the parameters to every rank."""
        if self._gather is not None:
            self.world.gather(self._gather)
        elif self.node is not None:
            self.node.barrier()

    def gather_state(self, optimizer: Optimizer) -> None:
        """Before rank 0 saves a checkpoint: the optimizer state each rank keeps for its part of the
        parameters, gathered whole (every rank takes part; a resume on any N reads it whole)."""
        if self.sharded:
            for flat in optimizer.flat_slots:
                self.world.gather(flat)

    def loaded(self) -> None:
        """After every rank loaded the same checkpoint into the parameters (in shared memory: one copy)."""
        if self.node is not None:
            self.node.barrier()

    def release(self) -> None:
        """The network's parameters back in memory of its own, once the run is over (idempotent)."""
        if self._shared and self.node is not None:  # (every rank's last update is in)
            self._net.place_params(self.node.values.copy(), copy=False)
            self._shared = False
