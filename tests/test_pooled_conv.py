"""The pass of a convolution, ReLU and max pooling (specc.convpasses.pooled_conv_forward and _backward,
and Winograd's, specc.winograd.winograd_pooled_forward and _backward): against loops over pixels and
windows, and the fused network against the unfused one, on data full of ties (whole numbers), where
the gradient must go to each window's first maximum. F(2x2, 3x3) multiplies by 0, +-1 and 1/2 only,
so whole numbers stay exact and so do their ties; F(4x4)'s 1/6 and 1/12 round them, so it is
checked on random data, whose windows have one maximum."""
from __future__ import annotations

import numpy as np
import pytest

import specc
from specc.convpasses import pooled_conv_backward, pooled_conv_forward
from specc.winograd import (
    winograd_filters,
    winograd_filters_grad,
    winograd_mats_size,
    winograd_pooled_backward,
    winograd_pooled_forward,
)
from specc.winograd_tiles import winograd_tile_size, winograd_work_sizes


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
    cols, y = np.empty((n, cells, ckk + 1, th * tw)), np.empty((n, f, th * tw))
    later = np.empty((n, cells - 1, f, th * tw), bool)
    xp = np.empty((chunk, c, h + 2 * pad, wd + 2 * pad)) if pad else None
    pooled_conv_forward(x, wb, k, stride, pad, size, (cols, np.empty((chunk, cells, f, th * tw)), xp), y, later)
    work = (np.empty((chunk, f, th * tw)), np.empty((chunk, cells, f, th * tw)), np.empty((n, cells, f, ckk + 1)),
            np.empty((chunk, cells, ckk, th * tw)), xp)
    gsum, dx = np.empty((f, ckk + 1)), np.empty_like(x)
    pooled_conv_backward(dy.reshape(n, f, -1), later, cols, wb, k, stride, pad, size, work, gsum, dx)

    _, pooled, dw, db, want_dx = _loops(x, w, b, stride, pad, size, dy)
    assert np.array_equal(y.reshape(pooled.shape), pooled)
    assert np.allclose(gsum[:, :ckk].reshape(w.shape), dw, rtol=1e-12, atol=1e-12)
    assert np.allclose(gsum[:, ckk], db, rtol=1e-12, atol=1e-12)
    assert np.allclose(dx, want_dx, rtol=1e-12, atol=1e-12)
    y_again = np.empty_like(y)  # inference: the same maxima without the comparisons for the backward
    pooled_conv_forward(x, wb, k, stride, pad, size, (cols, np.empty((chunk, cells, f, th * tw)), xp), y_again)
    assert np.array_equal(y_again, y)


# (c, f, h, w, pad, m, size, chunk): F(2x2) with its 2x2 window per tile, F(4x4) with four 2x2
# windows and with one 4x4 window per tile, a partial last chunk, pad 0 and 2
WINOGRAD_CASES = [(4, 3, 6, 8, 1, 2, 2, 3), (5, 2, 8, 4, 0, 2, 2, 7), (4, 3, 8, 8, 1, 4, 2, 3),
                  (6, 4, 10, 6, 2, 4, 2, 2), (4, 2, 8, 8, 1, 4, 4, 4)]


@pytest.mark.parametrize("c, f, h, wd, pad, m, size, chunk", WINOGRAD_CASES)
def test_winograd_pooled_pass_agrees_with_loops(c, f, h, wd, pad, m, size, chunk):
    rng = np.random.default_rng(c * 100 + h * 10 + m + size)
    n, a = 7, m + 2
    oh, ow = h + 2 * pad - 2, wd + 2 * pad - 2
    if m == 2:  # whole numbers: many equal maxima, exact in F(2x2)
        x = rng.integers(-2, 3, (n, c, h, wd)).astype(float)
        w, b = rng.integers(-1, 2, (f, c, 3, 3)).astype(float), rng.integers(-1, 2, f).astype(float)
    else:
        x, w, b = rng.standard_normal((n, c, h, wd)), rng.standard_normal((f, c, 3, 3)), rng.standard_normal(f)
    dy = rng.standard_normal((n, f, oh // size, ow // size))
    work = tuple(np.full(s, np.nan) for s in winograd_work_sizes(m, chunk, c, f, oh, ow).values())
    u, ut, mats = np.empty((a * a, f, c)), np.empty((a * a, c, f)), np.empty(winograd_mats_size(m))
    winograd_filters(w, mats, u, ut)
    v = np.full((n, winograd_tile_size(m, c, oh, ow)), np.nan)
    later = np.empty((n, (size * size - 1) * f * oh * ow // (size * size)), bool)
    y = np.empty(dy.shape)
    winograd_pooled_forward(x, ut, mats, b, pad, size, chunk, work, v, y, later)
    du, du_sum, dw, db, dx = np.empty_like(u), np.empty_like(u), np.empty_like(w), np.empty_like(b), np.empty_like(x)
    winograd_pooled_backward(v, dy, y, later, u, mats, pad, size, chunk, work, du, du_sum, db, dx)
    winograd_filters_grad(du_sum, mats, dw)

    # the pass applies ReLU to the maxima: the loops' pooling, then ReLU and its gradient
    pooled = _loops(x, w, b, 1, pad, size, dy)[1]
    _, _, want_dw, want_db, want_dx = _loops(x, w, b, 1, pad, size, dy * (pooled > 0))
    pooled = np.maximum(pooled, 0)
    if m == 2:
        assert np.array_equal(y, pooled)
    np.testing.assert_allclose(y, pooled, rtol=0, atol=1e-12 * np.abs(pooled).max())
    for got, want in ((dw, want_dw), (db, want_db), (dx, want_dx)):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12 * np.abs(want).max())
    y_again = np.empty_like(y)  # inference: the same maxima without the comparisons for the backward
    winograd_pooled_forward(x, ut, mats, b, pad, size, chunk, work, v, y_again)
    assert np.array_equal(y_again, y)


def _compiled_pair(text, seed):
    """The network of `text` (an Affine and the loss after it) fused and unfused, float64, the same weights."""
    fused, unfused = (specc.compile(text + " -> Affine(3) -> SoftmaxWithLoss", dtype="float64", fuse=f, seed=seed)
                      for f in (True, False))
    for k in fused.params:
        unfused.params[k][...] = fused.params[k]
    return fused, unfused


def _assert_fused_is_unfused(fused, unfused, text, whole_numbers):
    """Scores and gradients of the two on one batch: whole-number weights and data (equal maxima,
    zeros after ReLU; exact where the fused arithmetic is) or random ones (within rounding)."""
    rng = np.random.default_rng(len(text))
    if whole_numbers:
        for k in fused.params:
            fused.params[k][...] = rng.integers(-1, 2, fused.params[k].shape)
            unfused.params[k][...] = fused.params[k]
        x = rng.integers(-1, 2, (5, *fused.input_shape)).astype(float)
    else:
        x = rng.standard_normal((7, *fused.input_shape))
    t = rng.integers(0, 3, len(x))
    if whole_numbers:
        assert np.array_equal(fused.predict(x), unfused.predict(x))
    np.testing.assert_allclose(fused.predict(x), unfused.predict(x), rtol=1e-10, atol=1e-12)
    gf, gu = fused.gradient(x, t), unfused.gradient(x, t)
    for key in gf:
        np.testing.assert_allclose(gf[key], gu[key], rtol=1e-12 if whole_numbers else 1e-9,
                                   atol=1e-12 * max(1.0, np.abs(gu[key]).max()), err_msg=key)


@pytest.mark.parametrize("text", [
    "input 1x12x12\nConvolution(4, kernel=5) -> ReLU -> Pooling(2)",
    "input 2x9x9\nConvolution(3, kernel=2) -> ReLU -> Convolution(4, kernel=3, pad=1) -> ReLU -> Pooling(2)",
    "input 2x10x10\nConvolution(3, kernel=2) -> ReLU -> Convolution(4, kernel=3, stride=2, pad=2) -> ReLU"
    " -> Pooling(3)",
    # Winograd F(2x2): 6 x 6 outputs are not 4 x 4 tiles
    "input 1x6x6\nConvolution(4, kernel=3, pad=1) -> ReLU -> Convolution(5, kernel=3, pad=1) -> ReLU -> Pooling(2)",
])
def test_fused_pooled_pass_equals_the_layers_one_by_one(text):
    """The pass takes in the pooling (kernel names say so) and computes what the reference does,
    on whole-number data where windows hold several equal maxima and zeros after the ReLU."""
    fused, unfused = _compiled_pair(text, seed=2)
    assert [k.name for k in fused.plan.kernels if k.pooled] == ["Convolution+ReLU+Pooling"]
    _assert_fused_is_unfused(fused, unfused, text, whole_numbers=True)


@pytest.mark.parametrize("text, pooled", [
    ("input 1x8x8\nConvolution(4, kernel=3, pad=1) -> ReLU -> Convolution(5, kernel=3, pad=1) -> ReLU -> Pooling(2)",
     True),
    ("input 4x8x8\nConvolution(3, kernel=3, pad=1) -> ReLU -> Pooling(4)", True),
    ("input 4x6x6\nConvolution(3, kernel=3, pad=1) -> ReLU -> Pooling(3)", False),  # 3 does not divide F(2x2)'s tiles
])
def test_fused_winograd_pooled_pass_equals_the_layers_one_by_one(text, pooled):
    """F(4x4) pools its tiles' outputs in the pass (random data: no ties to round apart); a pooling
    whose windows cut across the tiles stays a layer of its own."""
    fused, unfused = _compiled_pair(text, seed=3)
    assert "winograd_" in fused.code
    assert [k.name for k in fused.plan.kernels if k.pooled] == (["Convolution+ReLU+Pooling"] if pooled else [])
    _assert_fused_is_unfused(fused, unfused, text, whole_numbers=False)


@pytest.mark.parametrize("text", [
    "input 1x9x9\nConvolution(3, kernel=3, pad=1) -> ReLU -> Convolution(4, kernel=3, stride=2, pad=1) -> ReLU",
    "input 2x8x8\nConvolution(3, kernel=5) -> ReLU -> Convolution(2, kernel=3) -> ReLU",
])
def test_im2col_convolution_absorbs_its_relu_and_equals_the_layers_one_by_one(text):
    """im2col's pass with the bias as a row of ones and ReLU on each chunk (conv_relu_forward), its
    input gradient included (the second convolution's), on whole numbers: zeros after the ReLU."""
    fused, unfused = _compiled_pair(text, seed=4)
    assert [k.name for k in fused.plan.kernels if k.absorbed] == ["Convolution+ReLU"] * 2
    assert fused.code.count("conv_relu_backward(d") - fused.code.count("def conv_relu_backward(") == 2
    _assert_fused_is_unfused(fused, unfused, text, whole_numbers=True)


@pytest.mark.parametrize("text, hwnc", [
    # F(4x4) into F(2x2) (a pooled pass, then one that absorbs its ReLU) into F(4x4) with pad 2
    ("input 4x8x8\nConvolution(4, kernel=3, pad=1) -> ReLU -> Pooling(2) -> Convolution(5, kernel=3, pad=1) -> ReLU"
     " -> Convolution(3, kernel=3, pad=2) -> ReLU", [1, 2, 3, 4, 5]),
    # no activation between two convolutions, a Tanh in place after one, a pad-0 convolution last
    ("input 5x10x10\nConvolution(4, kernel=3, pad=1) -> Convolution(4, kernel=3, pad=1) -> Tanh"
     " -> Convolution(3, kernel=3)", [1, 2, 3]),
])
def test_activations_between_winograd_passes_are_hwnc_and_the_network_equals_the_layers_one_by_one(text, hwnc):
    fused, unfused = _compiled_pair(text, seed=5)
    assert [i + 1 for i, w in enumerate(fused.plan.wires) if w.hwnc_out] == hwnc
    _assert_fused_is_unfused(fused, unfused, text, whole_numbers=False)


def test_gradcheck_blames_the_backward_pass_that_is_wrong_not_the_hwnc_layout(monkeypatch):
    """A gradient check that fails looks for the first kernel whose output or gradient differs from
    the reference's; (H, W, N, C) buffers are compared as the NCHW arrays they stand for."""
    from specc.gradcheck import check_network
    net = specc.compile("input 4x8x8\nConvolution(4, kernel=3, pad=1) -> ReLU -> Convolution(4, kernel=3, pad=1)"
                        " -> ReLU -> Affine(3) -> SoftmaxWithLoss", dtype="float64", seed=6)
    assert net.plan.wires[0].hwnc_out and net.plan.wires[2].hwnc_in
    assert check_network(net).passed
    original = net._gen["winograd_backward"]

    def doubled_input_gradient(*args, **kwargs):  # the second convolution's dx, twice what it is
        original(*args, **kwargs)
        dx = args[10]
        if dx is not None:
            dx *= 2

    monkeypatch.setitem(net._gen, "winograd_backward", doubled_input_gradient)
    report = check_network(net)
    assert not report.passed
    assert report.culprit == "layer 3, Convolution(4, kernel=3, pad=1), in the generated backward pass"
