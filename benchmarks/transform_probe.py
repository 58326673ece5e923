"""How much a compiled kernel would gain on Winograd's input transform: specc's NumPy path (the tile
gather of specc.winograd_tiles, then B^T d B as one matrix product with the Kronecker product
B^T (x) B^T) against the same transform as a numba kernel (B^T applied row by row and column by
column, 6-point combinations vectorised over the channels), at DeepConvNet's three F(4x4, 3x3)
layers, batch 100, in one process. A probe for the performance notes, not a path of specc's: numba
is not one of specc's dependencies (pip install numba to run the second column).

    OPENBLAS_NUM_THREADS=1 taskset -c 1 python benchmarks/transform_probe.py
"""
from __future__ import annotations

import time

import numpy as np

from specc.winograd import _winograd_kron, winograd_filters, winograd_mats_size
from specc.winograd_tiles import _winograd_gather, _winograd_views, winograd_work_sizes

M, A = 4, 6
LAYERS = [("28x28, 16 -> 16", 28, 16, 9), ("8x8, 32 -> 64", 8, 32, 38), ("8x8, 64 -> 64", 8, 64, 25)]  # (H, C, chunk)


def numba_transform():
    """The numba kernel, or None without numba: xp (Hq, Wq, k, C) -> out (a^2, th*tw*k, C)."""
    try:
        import numba
    except ImportError:
        return None
    f2, f4, f5 = np.float32(2), np.float32(4), np.float32(5)  # float32 constants keep the loop in float32

    @numba.njit(fastmath=True, boundscheck=False, inline="always")
    def bt6(x0, x1, x2, x3, x4, x5, y0, y1, y2, y3, y4, y5):
        # y = B^T x for six rows of C values (B^T of F(4x4, 3x3), interpolation points 0, +-1, +-2)
        for c in range(len(x0)):
            d0, d1, d2, d3, d4, d5 = x0[c], x1[c], x2[c], x3[c], x4[c], x5[c]
            y0[c] = f4 * d0 - f5 * d2 + d4
            y1[c] = -f4 * (d1 + d2) + d3 + d4
            y2[c] = f4 * (d1 - d2) - d3 + d4
            y3[c] = f2 * (d3 - d1) - d2 + d4
            y4[c] = f2 * (d1 - d3) - d2 + d4
            y5[c] = f4 * d1 - f5 * d3 + d5

    @numba.njit(fastmath=True, boundscheck=False)
    def transform(xp, th, tw, out):
        k, c = xp.shape[2], xp.shape[3]
        t = np.empty((6, 6, c), xp.dtype)
        for r in range(th):
            for q in range(tw):
                for n in range(k):
                    row, i, j = (r * tw + q) * k + n, 4 * r, 4 * q
                    for s in range(6):  # t[:, s] = B^T d[:, s]
                        bt6(xp[i, j + s, n], xp[i + 1, j + s, n], xp[i + 2, j + s, n], xp[i + 3, j + s, n],
                            xp[i + 4, j + s, n], xp[i + 5, j + s, n], t[0, s], t[1, s], t[2, s], t[3, s], t[4, s],
                            t[5, s])
                    for p in range(6):  # out[6p:6p + 6] = (t B)[p]
                        bt6(t[p, 0], t[p, 1], t[p, 2], t[p, 3], t[p, 4], t[p, 5], out[6 * p, row],
                            out[6 * p + 1, row], out[6 * p + 2, row], out[6 * p + 3, row], out[6 * p + 4, row],
                            out[6 * p + 5, row])
    return transform


def per_step(fn, chunks, rounds=5):
    fn()
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(chunks):
            fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    kernel = numba_transform()
    rng = np.random.default_rng(0)
    print("F(4x4, 3x3) input transform, ms per step of 100 samples (best of 5)")
    print(f"{'layer':<18} {'specc (NumPy)':>14} {'numba':>8} {'max |diff|':>11}")
    for name, h, c, chunk in LAYERS:
        x = rng.standard_normal((h, h, chunk, c), dtype=np.float32)
        work = [np.zeros(n, np.float32) for n in winograd_work_sizes(M, chunk, c, c, h, h).values()]
        xp, raw, tiles = _winograd_views(work, A, chunk, c, c, h, h)[:3]
        mats = np.empty(winograd_mats_size(M), np.float32)
        winograd_filters(np.zeros((c, c, 3, 3), np.float32), mats, np.empty((A * A, c, c), np.float32),
                         np.empty((A * A, c, c), np.float32))
        bk = _winograd_kron(mats, A)[0]

        def numpy_way():
            _winograd_gather(x, 1, xp, raw)
            np.matmul(bk, raw.reshape(A * A, -1), out=tiles.reshape(A * A, -1))
        chunks = -(-100 // chunk)
        ours = per_step(numpy_way, chunks)
        if kernel is None:
            print(f"{name:<18} {ours * 1e3:>14.2f} {'-':>8} {'-':>11}")
            continue
        out = np.empty((A * A, (h // M) ** 2 * chunk, c), np.float32)

        def numba_way():
            np.copyto(xp[1:h + 1, 1:h + 1], x)  # the same padded copy as the gather's
            kernel(xp, h // M, h // M, out)
        theirs = per_step(numba_way, chunks)
        diff = float(np.max(np.abs(out.reshape(-1) - tiles.reshape(-1))))
        print(f"{name:<18} {ours * 1e3:>14.2f} {theirs * 1e3:>8.2f} {diff:>11.2g}")
    if kernel is None:
        print("numba is not installed: no numba column (pip install numba)")


if __name__ == "__main__":
    main()
