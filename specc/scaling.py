"""Scale on paper (`specc plan`): the expected speedup of data-parallel training on N workers, from
the network's parameters and FLOPs, a single-process step time, and a model of a ring allreduce.

The model, per training step of a global batch B on N workers (specc's scheme: each worker computes
its share of the batch, then one allreduce of one flat gradient buffer, then every worker updates
all the parameters):

    step(N)  = (step(1) - fixed) / N  +  fixed  +  comm(N)
    comm(N)  = 2(N-1) x latency  +  2(N-1)/N x itemsize x parameters / bandwidth

`fixed` is the part of a step that does not shrink with the batch: the optimizer update (every worker
does it on all parameters) and the per-step overhead of Python and of launching each kernel; it is
estimated from the step measured at two batch sizes, step(b) = fixed + b x (compute per sample).
From SHARD_FROM parameters specc shards the update (training.loop): a reduce-scatter of the
gradient, each worker's part of the update, an allgather of the parameters. The two move what the
allreduce moves, in as many messages, and the update (`sharded`, measured apart) divides over the
workers: fixed becomes (fixed - sharded) + sharded / N.

A ring allreduce is N-1 reduce-scatter and N-1 allgather steps; each worker sends (and receives,
full duplex) 2(N-1)/N of the buffer over its link, one message per step. Assumed: the compute of a
step divides evenly over the workers and grows linearly with the batch beyond `fixed`; communication does not
overlap compute (specc's one allreduce comes after the backward pass); every link has the stated
bandwidth and latency and nothing else shares it. Speedup = step(1) / step(N), efficiency =
speedup / N. Data parallelism stops paying, here, where the efficiency falls below 50%: that is,
below the global batch B_half where a worker's share of the compute no longer exceeds the
communication and the fixed part it cannot share."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Sequence

TRAINING_FLOPS_PER_FORWARD = 3  # forward + backward (the input and the weight gradients) ~ 3 x forward
# Parameters from which `specc train` shards the update over MPI ranks (training.loop): below, the
# collectives' latency costs more than the update saves (measured on 2 ranks: TwoLayerNet's 39,760
# parameters 1.09x -> 0.95x sharded, SimpleConvNet's 433,890 1.61x -> 1.72x with the kernels then).
SHARD_FROM = 100_000
HALF = 0.5  # the efficiency below which data parallelism is said to stop paying


@dataclass(frozen=True)
class Link:
    """A worker's connection: bandwidth in Gbit/s each way, latency per message in microseconds."""

    gbit: float
    latency_us: float

    @property
    def name(self) -> str:
        return f"{self.gbit:g} Gbit/s, {self.latency_us:g} µs"

    def seconds(self, nbytes: float, messages: int) -> float:
        return messages * self.latency_us * 1e-6 + nbytes * 8 / (self.gbit * 1e9)


DEFAULT_LINKS = (Link(10, 25), Link(100, 2))  # Ethernet with TCP; an RDMA fabric (InfiniBand, RoCE)
DEFAULT_WORKERS = (2, 4, 8, 16, 32, 64)


@dataclass(frozen=True)
class Estimate:
    workers: int
    link: Link
    sent_bytes: float  # per worker per step: 2(N-1)/N x itemsize x parameters
    compute_ms: float  # per worker: its share of the compute, and the whole fixed part
    comm_ms: float
    speedup: float
    efficiency: float
    half_batch: float  # the global batch from which the efficiency is at least 50%
    even_batch: float  # the global batch from which N workers are faster than one at all

    @property
    def step_ms(self) -> float:
        return self.compute_ms + self.comm_ms


@dataclass(frozen=True)
class ScalePlan:
    source: str | None
    parameters: int
    itemsize: int  # bytes per parameter as trained (4 for float32)
    batch: int
    flops_per_step: int  # TRAINING_FLOPS_PER_FORWARD x forward FLOPs per sample x batch
    step_ms: float  # one process, the whole batch
    fixed_ms: float  # of which the part that does not shrink with the batch (update, per-step overhead)
    sharded_ms: float  # of which the update, when the workers divide it (parameters >= SHARD_FROM), else 0
    measured: bool  # step_ms and fixed_ms measured here (False: given)
    estimates: tuple[Estimate, ...]  # by link, then by workers

    @property
    def gflops(self) -> float:
        """The rate one process achieves on this network (GFLOP/s)."""
        return self.flops_per_step / (self.step_ms * 1e6)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        for e in d["estimates"]:
            e["link"]["name"] = Link(**e["link"]).name
        return d


def estimate(parameters: int, itemsize: int, batch: int, step_ms: float, fixed_ms: float, workers: int,
             link: Link, sharded_ms: float = 0.0) -> Estimate:
    """The model above for N = `workers` on `link`; `sharded_ms` of the fixed part divides over them."""
    n = workers
    per_sample_ms = (step_ms - fixed_ms) / batch
    sent = 2 * (n - 1) / n * itemsize * parameters
    comm_ms = link.seconds(sent, 2 * (n - 1)) * 1e3
    # what each worker pays that no batch size shrinks: the overhead, and its part of a sharded update
    unshared = fixed_ms - sharded_ms + sharded_ms / n
    compute_ms = (step_ms - fixed_ms) / n + unshared
    speedup = step_ms / (compute_ms + comm_ms)
    # efficiency >= 1/2  <=>  2(f + Bc) >= N (u + Bc/N + comm)  <=>  Bc >= N u - 2 f + N comm
    # (f: fixed, u: unshared; u = f without sharding)
    half = max(0.0, (n * unshared - 2 * fixed_ms + n * comm_ms) / per_sample_ms)
    # speedup >= 1  <=>  f + B c >= u + B c / N + comm
    even = max(0.0, (comm_ms + unshared - fixed_ms) / (per_sample_ms * (1 - 1 / n)))
    return Estimate(n, link, sent, compute_ms, comm_ms, speedup, speedup / n, half, even)


def fixed_part(batch: int, step_ms: float, small_batch: int, small_step_ms: float) -> float:
    """The intercept of step(b) = fixed + b x c through two measured steps, within [0, step_ms)."""
    if small_batch >= batch:
        return 0.0
    c = max(0.0, (step_ms - small_step_ms) / (batch - small_batch))
    return min(max(0.0, step_ms - c * batch), 0.99 * step_ms)


def plan(parameters: int, forward_flops: int, itemsize: int, batch: int, step_ms: float, fixed_ms: float,
         measured: bool, workers: Sequence[int] = DEFAULT_WORKERS, links: Sequence[Link] = DEFAULT_LINKS,
         source: str | None = None, update_ms: float = 0.0) -> ScalePlan:
    """The plan; `update_ms` (the optimizer's update, part of fixed_ms) divides over the workers when
    the network has SHARD_FROM parameters or more, as specc train shards it then."""
    sharded = min(update_ms, fixed_ms) if parameters >= SHARD_FROM else 0.0
    rows = tuple(estimate(parameters, itemsize, batch, step_ms, fixed_ms, n, link, sharded) for link in links
                 for n in workers)
    return ScalePlan(source, parameters, itemsize, batch, TRAINING_FLOPS_PER_FORWARD * forward_flops * batch,
                     step_ms, fixed_ms, sharded, measured, rows)
