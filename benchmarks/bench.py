"""Training-step benchmark: specc fused vs specc unfused vs a book-style layer-object NumPy chain
(and PyTorch eager and JAX jit, when installed; and, for Affine/ReLU chains, the hand-tuned NumPy step of
benchmarks/hand_tuned.py), on the same network, data and batch, in one process, interleaved, so
their figures are side by side.

    python benchmarks/bench.py models/two_layer_net.net --batch 100 --dtype float32 --threads 1

A step is forward + backward + SGD update on one batch already in memory. Run it pinned to one
core (taskset -c 0 ...) for stable figures.
"""
from __future__ import annotations

import argparse
import os
import sys


def _args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("spec")
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    p.add_argument("--book-dtype", default="float64", choices=["float32", "float64"],
                   help="dtype of the book-style chain (the book's code is float64)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--steps", type=int, default=50, help="timed steps per round and implementation")
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--data", default=os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "mnist"))
    p.add_argument("--no-torch", action="store_true")
    p.add_argument("--no-jax", action="store_true")
    return p.parse_args()


ARGS = _args()
for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(ARGS.threads)  # before numpy loads its BLAS
if ARGS.threads == 1:  # XLA's CPU runtime, before jax loads
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                               + " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1").strip()

import time  # noqa: E402
import tracemalloc  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from book_style import BookNet  # noqa: E402
from hand_tuned import HandTuned, chain  # noqa: E402

import specc  # noqa: E402
from specc.training.data import Batches, load  # noqa: E402
from specc.training.optimizers import make_optimizer  # noqa: E402

LR = 0.1


def batch_of(net, n):
    """A real batch when the data set is there and fits, random images otherwise."""
    try:
        data = load(ARGS.data)
        if np.prod(data.sample_shape) == np.prod(net.input_shape):
            x = Batches(data.x_train, data.scale(), net.dtype, net.input_shape).take(np.arange(n)).copy()
            return x, data.t_train[:n].copy(), data.name
    except specc.SpeccError:
        pass
    rng = np.random.default_rng(0)
    return rng.random((n, *net.input_shape), dtype=net.dtype), rng.integers(0, net.loss_layer.out_shape[0], n), "random"


def specc_step(net):
    opt = make_optimizer("SGD", {"lr": LR}, net.parameters())
    scale = opt.gradient_scale(LR)  # as specc's trainer does: SGD's rate folded into the loss's gradient

    def step(x, t):
        loss = net.backward(x, t, scale)
        opt.step(LR, scale)
        return loss
    return step


def book_step(net, dtype):
    book = BookNet(net, dtype)
    return lambda x, t: book.step(x.astype(dtype), t, LR)


def torch_step(net):
    import torch
    torch.set_num_threads(ARGS.threads)
    layers = []
    for c in net.checked.layers[:-1]:
        a, kind = c.layer.args, c.spec.type
        if kind == "Affine":
            m = torch.nn.Linear(*net.params[next(iter(c.params))].shape)
            layers += [torch.nn.Flatten(), m] if len(c.in_shape) > 1 else [m]
        elif kind == "Convolution":
            layers.append(torch.nn.Conv2d(c.in_shape[0], a["filters"], a["kernel"], a["stride"], a["pad"]))
        elif kind == "Pooling":
            layers.append(torch.nn.MaxPool2d(a["size"], a["stride"], a["pad"]))
        elif kind == "BatchNorm":
            layers.append((torch.nn.BatchNorm1d if len(c.in_shape) == 1 else torch.nn.BatchNorm2d)(c.in_shape[0]))
        elif kind == "Dropout":
            layers.append(torch.nn.Dropout(a["ratio"]))
        else:
            layers.append({"ReLU": torch.nn.ReLU, "Sigmoid": torch.nn.Sigmoid, "Tanh": torch.nn.Tanh,
                           "Flatten": torch.nn.Flatten}[kind]())
    model = torch.nn.Sequential(*layers).to(getattr(torch, ARGS.dtype))
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    loss_fn = torch.nn.CrossEntropyLoss()
    cache = {}

    def step(x, t):
        if id(x) not in cache:
            cache.clear()
            cache[id(x)] = (torch.from_numpy(x), torch.from_numpy(np.asarray(t, np.int64)))
        tx, tt = cache[id(x)]
        opt.zero_grad(set_to_none=False)
        loss = loss_fn(model(tx), tt)
        loss.backward()
        opt.step()
        return loss.item()
    return step


def gemm_floor(net, n, dtype) -> tuple[float, int]:
    """Seconds and FLOPs of the matrix multiplies a training step needs at these shapes."""
    shapes = []
    for i, c in enumerate(net.checked.layers):
        if c.spec.type == "Affine":
            k, m = net.params[next(iter(c.params))].shape
            rows = n
        elif c.spec.type == "Convolution":
            f, ch, kh, kw = net.params[next(iter(c.params))].shape
            k, m, rows = ch * kh * kw, f, n * c.out_shape[1] * c.out_shape[2]
        else:
            continue
        shapes += [(rows, k, m), (k, rows, m)] + ([(rows, m, k)] if i > 0 else [])
    arrays = [(np.ones((a, b), dtype), np.ones((b, c), dtype), np.empty((a, c), dtype)) for a, b, c in shapes]
    best = float("inf")
    for _ in range(30):
        t0 = time.perf_counter()
        for a, b, out in arrays:
            np.dot(a, b, out=out)
        best = min(best, time.perf_counter() - t0)
    return best, sum(2 * a * b * c for a, b, c in shapes)


def peak_gemm_rate(dtype, n=2048) -> float:
    """FLOP/s of a large square matrix multiply at the thread count in use: the machine's rate."""
    a, b = np.ones((n, n), dtype), np.ones((n, n), dtype)
    out = np.empty((n, n), dtype)
    np.dot(a, b, out=out)
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        np.dot(a, b, out=out)
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best


def main() -> None:
    fused = specc.load(ARGS.spec, dtype=ARGS.dtype)
    unfused = specc.load(ARGS.spec, dtype=ARGS.dtype, fuse=False)
    x, t, source = batch_of(fused, ARGS.batch)
    impls = {"specc fused": specc_step(fused), "specc unfused": specc_step(unfused),
             f"book-style ({ARGS.book_dtype})": book_step(fused, ARGS.book_dtype)}
    widths = chain(fused)
    if widths is not None:
        impls["hand-tuned numpy"] = HandTuned(fused, widths, ARGS.batch, LR).step
    if not ARGS.no_torch:
        try:
            impls["pytorch eager"] = torch_step(fused)
        except ImportError:
            print("PyTorch is not installed: no pytorch eager row (pip install torch)")
    if not ARGS.no_jax:
        try:
            from jax_step import agreement, jax_step
        except ImportError:
            print("JAX is not installed: no jax jit row (pip install jax)")
        else:
            impls["jax jit"] = jax_step(fused, LR, ARGS.dtype)
            gap = agreement(fused, x, ARGS.dtype)
            print(f"jax jit: predictions on specc's initial weights differ by at most {gap:.2g}")
    times = {name: [] for name in impls}
    peaks = {}
    for name, step in impls.items():  # warm up, and measure what one step allocates
        step(x, t)
        tracemalloc.start()
        step(x, t)
        peaks[name] = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    for _ in range(ARGS.rounds):
        for name, step in impls.items():
            for _ in range(ARGS.steps):
                t0 = time.perf_counter()
                step(x, t)
                times[name].append(time.perf_counter() - t0)
    floor, gemm_flops = gemm_floor(fused, ARGS.batch, np.dtype(ARGS.dtype))
    peak = peak_gemm_rate(np.dtype(ARGS.dtype))
    fwd = specc.summary(fused.checked).flops * ARGS.batch
    limit = 3 * fwd / peak  # the step's FLOPs at the machine's peak rate
    print(f"{ARGS.spec}: batch {ARGS.batch}, {ARGS.dtype}, {ARGS.threads} thread(s), data {source}, "
          f"{ARGS.rounds} rounds x {ARGS.steps} steps interleaved; numpy {np.__version__}")
    print(f"{'implementation':<22} {'median ms':>10} {'min ms':>8} {'max ms':>8} {'vs fused':>9} "
          f"{'samples/s':>10} {'GFLOP/s':>8} {'alloc MB':>9} {'vs limit':>9}")
    base = float(np.median(times["specc fused"]))
    for name, ts in times.items():
        med = float(np.median(ts))
        print(f"{name:<22} {med * 1e3:>10.3f} {min(ts) * 1e3:>8.3f} {max(ts) * 1e3:>8.3f} {med / base:>8.2f}x "
              f"{ARGS.batch / med:>10,.0f} {3 * fwd / med / 1e9:>8.2f} {peaks[name]:>9.2f} {med / limit:>8.2f}x")
    print(f"{'matmul floor':<22} {floor * 1e3:>10.3f} {'':>8} {'':>8} {floor / base:>8.2f}x {'':>10} "
          f"{gemm_flops / floor / 1e9:>8.2f}")
    print(f"{'FLOPs-at-peak limit':<22} {limit * 1e3:>10.3f} {'':>8} {'':>8} {limit / base:>8.2f}x {'':>10} "
          f"{peak / 1e9:>8.2f}")
    print("GFLOP/s counts a step as 3x the forward FLOPs of `specc summary`; the floor is the step's matrix "
          "multiplies alone, at its shapes, at their own rate (its GFLOP/s column); the limit is the step's FLOPs "
          f"(3 x forward) at the peak rate of a {2048}x{2048} matrix multiply, which no algorithm doing those "
          "FLOPs beats (Winograd does fewer); 'vs limit' is each row's time over it. alloc MB is tracemalloc's peak "
          "during one step: for specc, Python objects and NumPy's own ufunc buffers (np.setbufsize bounds them; "
          "tests/test_memory.py holds a step under 8 KiB at 16 elements), no arrays; PyTorch's and JAX's "
          "allocators are not traced."
          + (" The hand-tuned step records p[label] and computes no loss value (the others do)."
             if widths is not None else ""))


if __name__ == "__main__":
    main()
