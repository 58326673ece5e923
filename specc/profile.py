"""Where a training step's time goes: each fused kernel's forward and backward, and the update."""
from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from specc.check import CheckedNetwork
from specc.compiler import compile as compile_network
from specc.layers.base import Labels
from specc.network import Network
from specc.source import Source
from specc.training.optimizers import make_optimizer


class KernelClock:
    """Called at each kernel boundary of timed generated code; adds the time since the last call
    to the (phase, kernel) that was running."""

    def __init__(self) -> None:
        self.totals: dict[tuple[str, int | None], float] = defaultdict(float)
        self._running: tuple[str, int | None] | None = None
        self._since = 0.0

    def __call__(self, phase: str | None, kernel: int | None) -> None:
        now = time.perf_counter()
        if self._running is not None:
            self.totals[self._running] += now - self._since
        self._running = (phase, kernel) if phase is not None else None
        self._since = now


@dataclass(frozen=True)
class KernelTime:
    kernel: int
    name: str
    layers: str  # "1-2"
    forward_ms: float
    backward_ms: float


@dataclass(frozen=True)
class Profile:
    batch: int
    steps: int
    kernels: list[KernelTime]
    update_ms: float
    step_ms: float  # median of whole steps, measured apart from the per-kernel run

    @property
    def total_ms(self) -> float:
        return sum(k.forward_ms + k.backward_ms for k in self.kernels) + self.update_ms


def profile(checked: CheckedNetwork, source: Source | None, batch: int = 100, steps: int = 50,
            dtype: str = "float32", optimizer: str = "SGD", seed: int = 0) -> Profile:
    """Per-kernel times of training steps on a random batch (means over `steps` after a warm-up)."""
    clock = KernelClock()
    net = Network(compile_network(checked, timed=True), source, dtype=dtype, seed=seed, clock=clock)
    plain = Network(compile_network(checked), source, dtype=dtype, seed=seed)
    rng = np.random.default_rng(seed)
    x = rng.random((batch, *net.input_shape), dtype=net.dtype)
    last = net.loss_layer
    t = (rng.integers(0, last.out_shape[0], batch) if net.plan.labels is Labels.CLASSES
         else rng.standard_normal((batch, last.out_shape[0])).astype(net.dtype))
    opt = make_optimizer(optimizer, {}, net.parameters())
    plain_opt = make_optimizer(optimizer, {}, plain.parameters())
    update = 0.0
    scale = opt.gradient_scale(opt.args["lr"])  # folded into the gradients as the trainer folds it
    for warm in (True, False):
        clock.totals.clear()
        update = 0.0
        for _ in range(3 if warm else steps):
            net.backward(x, t, scale)
            t0 = time.perf_counter()
            opt.step(opt.args["lr"], scale)
            update += time.perf_counter() - t0
    whole = []
    for _ in range(steps):
        t0 = time.perf_counter()
        plain.backward(x, t, scale)
        plain_opt.step(plain_opt.args["lr"], scale)
        whole.append(time.perf_counter() - t0)
    kernels = []
    for k, kernel in enumerate(net.plan.kernels, 1):
        first, last_i = kernel.layers[0] + 1, kernel.layers[-1] + 1
        kernels.append(KernelTime(k, kernel.name, f"{first}" if first == last_i else f"{first}-{last_i}",
                                  clock.totals[("forward", k)] / steps * 1e3,
                                  clock.totals[("backward", k)] / steps * 1e3))
    return Profile(batch, steps, kernels, update / steps * 1e3, float(np.median(whole)) * 1e3)
