"""The pass of a convolution, ReLU and max pooling (specc.convpool.pooled_conv_forward and _backward):
against loops over pixels and windows, and the fused network against the unfused one, on data full
of ties (whole numbers), where the gradient must go to each window's first maximum."""
from __future__ import annotations

import numpy as np
import pytest

import specc
from specc.convpool import pooled_conv_backward, pooled_conv_forward


def _loops(x, w, b, stride, pad, size, dy):
    """Convolution, max pooling and their gradients by loops over every pixel and window."""
    n, c, h, wd = x.shape
    f, _, k, _ = w.shape
    xp = np.zeros((n, c, h + 2 * pad, wd + 2 * pad))
    xp[:, :, pad:pad + h, pad:pad + wd] = x
    oh, ow = (h + 2 * pad - k) // stride + 1, (wd + 2 * pad - k) // stride + 1
    conv = np.zeros((n, f, oh, ow))
    for s in range(n):
        for o in range(f):
            for i in range(oh):
                for j in range(ow):
                    patch = xp[s, :, i * stride:i * stride + k, j * stride:j * stride + k]
                    conv[s, o, i, j] = (patch * w[o]).sum() + b[o]
    pooled = np.zeros((n, f, oh // size, ow // size))
    dconv = np.zeros_like(conv)
    for s in range(n):
        for o in range(f):
            for i in range(oh // size):
                for j in range(ow // size):
                    cells = [(r, q) for r in range(size) for q in range(size)]  # row by row
                    values = [conv[s, o, i * size + r, j * size + q] for r, q in cells]
                    best = max(values)
                    r, q = cells[values.index(best)]  # the first maximum
                    pooled[s, o, i, j] = best
                    dconv[s, o, i * size + r, j * size + q] = dy[s, o, i, j]
    dw, dxp = np.zeros_like(w), np.zeros_like(xp)
    for s in range(n):
        for o in range(f):
            for i in range(oh):
                for j in range(ow):
                    g = dconv[s, o, i, j]
                    dw[o] += g * xp[s, :, i * stride:i * stride + k, j * stride:j * stride + k]
                    dxp[s, :, i * stride:i * stride + k, j * stride:j * stride + k] += g * w[o]
    return conv, pooled, dw, dconv.sum(axis=(0, 2, 3)), dxp[:, :, pad:pad + h, pad:pad + wd]


@pytest.mark.parametrize("c, k, stride, pad, size, chunk", [
    (1, 5, 1, 0, 2, 3), (2, 3, 2, 1, 2, 1), (3, 2, 1, 2, 3, 4), (2, 3, 1, 1, 1, 2), (1, 1, 1, 0, 2, 9)])
def test_pooled_conv_agrees_with_loops(c, k, stride, pad, size, chunk):
    rng = np.random.default_rng(c * 1000 + k * 100 + stride * 10 + pad)
    n, f, th, tw = 7, 3, 3, 2
    oh, ow = th * size, tw * size
    h, wd = (oh - 1) * stride + k - 2 * pad, (ow - 1) * stride + k - 2 * pad
    x = rng.integers(-2, 3, (n, c, h, wd)).astype(float)  # whole numbers: many equal maxima
    w, b = rng.integers(-1, 2, (f, c, k, k)).astype(float), rng.integers(-1, 2, f).astype(float)
    dy = rng.standard_normal((n, f, th, tw))
    ckk, cells = c * k * k, size * size
    wb = np.concatenate([w.reshape(f, ckk), b[:, None]], axis=1)
    cols, y = np.empty((n, ckk + 1, oh * ow)), np.empty((n, f, th * tw))
    later = np.empty((n, f, cells - 1, th * tw), bool)
    xp = np.empty((chunk, c, h + 2 * pad, wd + 2 * pad)) if pad else None
    pooled_conv_forward(x, wb, k, stride, pad, size, (cols, np.empty((chunk, f, cells, th * tw)), xp), y, later)
    work = (np.empty((chunk, f, th * tw)), np.empty((chunk, f, cells, th * tw)), np.empty((n, f, ckk + 1)),
            np.empty((chunk, ckk, oh * ow)), xp)
    gsum, dx = np.empty((f, ckk + 1)), np.empty_like(x)
    pooled_conv_backward(dy.reshape(n, f, -1), later, cols, wb, k, stride, pad, size, work, gsum, dx)

    _, pooled, dw, db, want_dx = _loops(x, w, b, stride, pad, size, dy)
    assert np.array_equal(y.reshape(pooled.shape), pooled)
    assert np.allclose(gsum[:, :ckk].reshape(w.shape), dw, rtol=1e-12, atol=1e-12)
    assert np.allclose(gsum[:, ckk], db, rtol=1e-12, atol=1e-12)
    assert np.allclose(dx, want_dx, rtol=1e-12, atol=1e-12)
    y_again = np.empty_like(y)  # inference: the same maxima without the comparisons for the backward
    pooled_conv_forward(x, wb, k, stride, pad, size, (cols, np.empty((chunk, f, cells, th * tw)), xp), y_again)
    assert np.array_equal(y_again, y)

@pytest.mark.parametrize("text", [
    "input 1x12x12\nConvolution(4, kernel=5) -> ReLU -> Pooling(2)",
    "input 2x9x9\nConvolution(3, kernel=2) -> ReLU -> Convolution(4, kernel=3, pad=1) -> ReLU -> Pooling(2)",
    "input 2x10x10\nConvolution(3, kernel=2) -> ReLU -> Convolution(4, kernel=3, stride=2, pad=2) -> ReLU"
    " -> Pooling(3)",
])
def test_fused_pooled_pass_equals_the_layers_one_by_one(text):
    """The pass takes in the pooling (kernel names say so) and computes what the reference does,
    on whole-number data where windows hold several equal maxima and zeros after the ReLU."""
    fused, unfused = (specc.compile(text + " -> Affine(3) -> SoftmaxWithLoss", dtype="float64", fuse=f, seed=2)
                      for f in (True, False))
    assert [k.name for k in fused.plan.kernels if k.pooled] == ["Convolution+ReLU+Pooling"]
    rng = np.random.default_rng(len(text))
    for k in fused.params:
        fused.params[k][...] = rng.integers(-1, 2, fused.params[k].shape)
        unfused.params[k][...] = fused.params[k]
    x = rng.integers(-1, 2, (5, *fused.input_shape)).astype(float)
    t = rng.integers(0, 3, 5)
    assert np.array_equal(fused.predict(x), unfused.predict(x))
    gf, gu = fused.gradient(x, t), unfused.gradient(x, t)
    for key in gf:
        np.testing.assert_allclose(gf[key], gu[key], rtol=1e-12, atol=1e-12, err_msg=key)
