"""Winograd F(2x2, 3x3) and F(4x4, 3x3) convolution (specc.winograd.winograd_*) against direct convolution.

The oracle is a loop over the nine kernel offsets in float64, written apart from both im2col and
Winograd. Accepted float32 error: max |y - y_direct| <= bound * max |y_direct| (the output's
scale), and the same for every gradient, with bound 1e-5 for F(2x2) and 2e-5 for F(4x4), whose
transforms multiply by up to 25 and 64 and grow the error with the channel count. Measured on these
shapes: 1.2e-7 to 7.5e-7 for F(2x2); for F(4x4) 0.9e-6 to 6.7e-6 up to 64 channels (DeepConvNet's) and
up to 1.15e-5 at 128 (worst of three seeds; 9.0e-6 at 256).
"""
from __future__ import annotations

import numpy as np
import pytest

import specc
from specc.winograd import (
    winograd_backward,
    winograd_filters,
    winograd_filters_grad,
    winograd_forward,
    winograd_mats_size,
)
from specc.winograd_tiles import winograd_tile_size, winograd_work_sizes

F32_BOUND = {2: 1e-5, 4: 2e-5}  # F(m x m, 3x3): of the output's (or gradient's) largest magnitude


def _direct(x, w, pad):
    n, c, h, wd = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    oh, ow = h + 2 * pad - 2, wd + 2 * pad - 2
    y = np.zeros((n, w.shape[0], oh, ow))
    for i in range(3):
        for j in range(3):
            y += np.einsum("fc,nchw->nfhw", w[:, :, i, j], xp[:, :, i:i + oh, j:j + ow])
    return y


def _direct_grads(x, w, pad, dy):
    n, c, h, wd = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    oh, ow = dy.shape[2:]
    dw = np.empty(w.shape)
    dxp = np.zeros(xp.shape)
    for i in range(3):
        for j in range(3):
            dw[:, :, i, j] = np.einsum("nfhw,nchw->fc", dy, xp[:, :, i:i + oh, j:j + ow])
            dxp[:, :, i:i + oh, j:j + ow] += np.einsum("fc,nfhw->nchw", w[:, :, i, j], dy)
    return dw, dxp[:, :, pad:pad + h, pad:pad + wd]


def _winograd(x, w, b, pad, dy, chunk, m):
    dt = x.dtype
    n, c, h, wd = x.shape
    f = w.shape[0]
    oh, ow = h + 2 * pad - 2, wd + 2 * pad - 2
    work = tuple(np.full(s, np.nan, dt) for s in winograd_work_sizes(m, chunk, c, f, oh, ow).values())
    u, mats = np.empty(((m + 2) ** 2, f, c), dt), np.empty(winograd_mats_size(m), dt)
    ut = np.empty((u.shape[0], c, f), dt)
    winograd_filters(w, mats, u, ut)
    y, v = np.empty((n, f, oh, ow), dt), np.full((n, winograd_tile_size(m, c, oh, ow)), np.nan, dt)
    winograd_forward(x, ut, mats, b, pad, chunk, work, v, y)
    du, du_sum, dx, dw, db = np.empty_like(u), np.empty_like(u), np.empty_like(x), np.empty_like(w), np.empty_like(b)
    winograd_backward(v, dy, u, mats, pad, chunk, work, du, du_sum, db, dx)
    winograd_filters_grad(du_sum, mats, dw)
    return y, dw, db, dx


# (n, c, f, h, w, pad, chunk, m): DeepConvNet's shapes (fewer samples) with the tile the network
# uses and the other where it fits, pad 0, a chunk that leaves a partial last one, and a single tile
# per image (the overlap-add's edge columns and rows are all there is)
SHAPES = [(5, 16, 16, 28, 28, 1, 2, 4), (5, 16, 16, 28, 28, 1, 2, 2), (5, 16, 32, 14, 14, 1, 3, 2),
          (5, 32, 32, 14, 14, 2, 3, 4), (5, 32, 32, 14, 14, 2, 3, 2), (4, 64, 64, 8, 8, 1, 3, 4),
          (4, 64, 64, 8, 8, 1, 4, 2), (3, 5, 4, 10, 6, 0, 2, 2), (7, 4, 3, 6, 8, 1, 3, 2),
          (3, 4, 3, 4, 4, 0, 2, 2), (3, 5, 4, 10, 6, 0, 2, 4), (7, 4, 3, 8, 12, 1, 3, 4), (3, 4, 3, 6, 6, 0, 2, 4),
          (2, 128, 32, 8, 8, 1, 1, 4), (2, 128, 32, 8, 8, 1, 1, 2)]


def _relative_errors(n, c, f, h, w, pad, chunk, m):
    rng = np.random.default_rng(0)
    x, wt = rng.standard_normal((n, c, h, w)), rng.standard_normal((f, c, 3, 3)) * np.sqrt(2 / (9 * c))
    b = rng.standard_normal(f) * 0.1
    y_ref = _direct(x, wt, pad) + b[:, None, None]
    dy = rng.standard_normal(y_ref.shape)
    dw_ref, dx_ref = _direct_grads(x, wt, pad, dy)
    db_ref = dy.sum(axis=(0, 2, 3))
    f32 = np.float32
    got = _winograd(x.astype(f32), wt.astype(f32), b.astype(f32), pad, dy.astype(f32), chunk, m)
    assert {a.dtype for a in got} == {np.dtype(f32)}
    return [np.abs(g - ref).max() / np.abs(ref).max() for g, ref in zip(got, (y_ref, dw_ref, db_ref, dx_ref))]


@pytest.mark.parametrize("n, c, f, h, w, pad, chunk, m", SHAPES)
def test_winograd_float32_error_is_within_the_bound(n, c, f, h, w, pad, chunk, m):
    assert max(_relative_errors(n, c, f, h, w, pad, chunk, m)) <= F32_BOUND[m]


@pytest.mark.parametrize("n, c, f, h, w, pad, chunk, m", SHAPES[7:])
def test_winograd_is_exact_convolution_in_float64(n, c, f, h, w, pad, chunk, m):
    rng = np.random.default_rng(1)
    x, wt, b = rng.standard_normal((n, c, h, w)), rng.standard_normal((f, c, 3, 3)), rng.standard_normal(f)
    y_ref = _direct(x, wt, pad) + b[:, None, None]
    dy = rng.standard_normal(y_ref.shape)
    dw_ref, dx_ref = _direct_grads(x, wt, pad, dy)
    for got, ref in zip(_winograd(x, wt, b, pad, dy, chunk, m), (y_ref, dw_ref, dy.sum(axis=(0, 2, 3)), dx_ref)):
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-12 * np.abs(ref).max())


def test_deep_conv_net_runs_its_3x3_convolutions_by_winograd_and_agrees_with_the_reference():
    net = specc.load("models/deep_conv_net.net", dtype="float64")
    convs = [c.layer for c in net.checked.layers if c.spec.type == "Convolution"]
    assert [c.winograd() for c in convs] == [False] + [True] * 5  # one input channel: im2col
    assert [c.winograd_tile() for c in convs[1:]] == [4, 2, 4, 4, 4]  # 14 x 14 is not 4 x 4 tiles
    assert "winograd_forward(" in net.compiled.code
    # ReLU in the convolutions' passes: pooled after three of them, applied as the output is written
    # after the others (the first, im2col's, on each chunk's output)
    kernels = [k.name for k in net.compiled.plan.kernels if k.one_pass]
    assert kernels == ["Convolution+ReLU", "Convolution+ReLU+Pooling"] * 3
    assert "conv_relu_forward(x," in net.compiled.code
    assert net.compiled.code.count("relu=True, hwnc_in=True, hwnc_out=True)") == 2
    assert net.compiled.code.count(", y=a") == 2
    # between two Winograd passes the activations are (H, W, N, C); the first's input and the last's
    # output (NCHW for im2col and Affine) are not
    wires = net.compiled.plan.wires
    assert [i + 1 for i, w in enumerate(wires) if w.hwnc_out] == list(range(3, 13))
    assert [(w.hwnc_in, w.hwnc_out) for w in (wires[2], wires[12])] == [(False, True), (True, False)]
    assert not wires[15].hwnc_in  # Affine reads the last pooling's NCHW output
    assert '"a5": np.empty((14, 14, N, 16), dtype)' in net.compiled.code
    ref = specc.load("models/deep_conv_net.net", dtype="float64", fuse=False)
    for k in net.params:
        ref.params[k][...] = net.params[k]
    rng = np.random.default_rng(2)
    x, t = rng.random((3, 1, 28, 28)), rng.integers(0, 10, 3)
    got, want = net.gradient(x, t), ref.gradient(x, t)
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-9, atol=1e-12 * np.abs(want[k]).max())
