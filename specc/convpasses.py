"""The fused im2col passes of the generated code: a convolution with ReLU, and a convolution with
ReLU and max pooling, a few samples at a time (specc.layers.conv emits them).

Every function here uses only `np`, other functions of this module and specc.convpool's, so the
code generator can copy its source verbatim into a standalone module (see specc.codegen).
"""
from __future__ import annotations

import numpy as np

from specc.convpool import output_size, pad_into

# A convolution whose output goes through ReLU into a size x size max pooling (stride = size), as one
# pass: the columns are laid out window cell by window cell, (size*size, CKK + 1, OH/size * OW/size)
# per sample, so that the matmul gives each cell's output as one contiguous (F, P) block and the
# pooling is an element-wise maximum of size*size such blocks (three times faster than over the
# (F, size*size, P) blocks of one matmul per sample, whose rows are P long); the bias rides in the
# matmul as a row of ones. A few samples at a time, so that each chunk's columns, output and gradient
# stay in cache from one step to the next.


def im2col_pooled(x, kernel, stride, pad, size, out, xp=None):
    """(N, C, H, W) -> out (N, size*size, C*kernel*kernel + 1, P): im2col_t's columns of each window
    cell (di, dj) (at di*size + dj), whose pixel i, j is output pixel (size*i + di, size*j + dj), with
    a last row of ones; xp (N, C, H + 2*pad, W + 2*pad) holds the padded images when pad > 0. With
    size 1, out (N, CKK + 1, OH*OW) is im2col_t's columns and the ones."""
    n, c = x.shape[:2]
    oh, ow = output_size(*x.shape[2:], kernel, stride, pad)
    if pad:
        x = pad_into(x, pad, xp)
    th, tw, ckk = oh // size, ow // size, c * kernel * kernel
    s0, s1, s2, s3 = x.strides
    windows = np.lib.stride_tricks.as_strided(
        x, (n, size, size, c, kernel, kernel, th, tw),
        (s0, s2 * stride, s3 * stride, s1, s2, s3, s2 * stride * size, s3 * stride * size), writeable=False)
    rows = out.reshape(n, size * size, ckk + 1, th * tw)
    np.copyto(rows[:, :, :ckk].reshape(n, size, size, c, kernel, kernel, th, tw), windows)
    rows[:, :, ckk] = 1
    return out


def col2im_pooled(cols, kernel, stride, pad, size, out, xp=None):
    """Adjoint of im2col_pooled without its row of ones: cols (N, size*size, C*kernel*kernel, P) added
    back into out (N, C, H, W), kernel*kernel*size*size strided adds; xp as in im2col_pooled."""
    n, c, h, w = out.shape
    oh, ow = output_size(h, w, kernel, stride, pad)
    th, tw, step = oh // size, ow // size, stride * size
    g = cols.reshape(n, size, size, c, kernel, kernel, th, tw)
    target = xp if pad else out
    target[...] = 0
    for i in range(kernel):
        for j in range(kernel):
            for di in range(size):
                for dj in range(size):
                    r, q = di * stride + i, dj * stride + j
                    target[:, :, r:r + step * th:step, q:q + step * tw:step] += g[:, di, dj, :, i, j]
    if pad:
        np.copyto(out, target[:, :, pad:pad + h, pad:pad + w])
    return out


def pooled_conv_forward(x, wb, kernel, stride, pad, size, work, y, later=None):
    """Convolution, then max pooling: y (N, F, P) = the maximum of each size x size window of the
    convolution of x (N, C, H, W) with wb (F, C*kernel*kernel + 1: the filters, then the bias).
    later (N, size*size - 1, F, P) bool, unless None: whether cell p + 1 of a window (in the pooling's
    row-major order) beats every cell before it, from which the backward finds its first maximum.
    work: (cols (N, size*size, CKK + 1, P), the columns (the backward reads them again), out (chunk,
    size*size, F, P), a chunk's convolution, xp (chunk, C, Hp, Wp) when pad > 0, else None)."""
    cols, out, xp = work
    n, cells, chunk = len(x), size * size, len(out)
    for s in range(0, n, chunk):
        m = min(chunk, n - s)
        part, top = out[:m], y[s:s + m]
        im2col_pooled(x[s:s + m], kernel, stride, pad, size, cols[s:s + m], xp[:m] if pad else None)
        np.matmul(wb, cols[s:s + m], out=part)  # (F, CKK + 1) @ (m, cells, CKK + 1, P)
        best = part[:, 0]
        for p in range(1, cells):
            if later is not None:
                np.greater(part[:, p], best, out=later[s:s + m, p - 1])
            best = np.maximum(best, part[:, p], out=top)
        if cells == 1:
            np.copyto(top, best)


def pooled_conv_backward(dy, later, cols, wb, kernel, stride, pad, size, work, gsum, dx=None):
    """The gradients of pooled_conv_forward from dy (N, F, P) of its y: each window's dy goes to its
    first maximum, the last of its cells that beat every cell before it, else its first cell (as the
    reference's argmax); gsum (F, CKK + 1) = the filters' and the bias's gradient; dx (N, C, H, W)
    unless None. work: (rest (chunk, F, P), da (chunk, size*size, F, P), gw (N, size*size, F, CKK + 1),
    dcols (chunk, size*size, CKK, P) or None, xp (chunk, C, Hp, Wp) or None)."""
    rest, da, gw, dcols, xp = work
    n, cells, chunk = len(dy), size * size, len(da)
    ckk = gsum.shape[1] - 1
    for s in range(0, n, chunk):
        m = min(chunk, n - s)
        d, g = da[:m], dy[s:s + m]
        for p in range(cells - 1, 0, -1):
            np.multiply(g, later[s:s + m, p - 1], out=d[:, p])
            g = np.subtract(g, d[:, p], out=rest[:m])  # what a later cell took, earlier ones do not get: g - g is 0
        np.copyto(d[:, 0], g)
        # (m, cells, F, P) @ (m, cells, P, CKK + 1): each cell's share of the filters' gradient
        np.matmul(d, cols[s:s + m].transpose(0, 1, 3, 2), out=gw[s:s + m])
        if dx is not None:
            np.matmul(wb[:, :ckk].T, d, out=dcols[:m])  # (CKK, F) @ (m, cells, F, P)
            col2im_pooled(dcols[:m], kernel, stride, pad, size, dx[s:s + m], xp[:m] if pad else None)
    np.sum(gw.reshape(-1, *gsum.shape), axis=0, out=gsum)


def conv_relu_forward(x, wb, kernel, stride, pad, chunk, cols, y, xp=None):
    """y (N, F, OH*OW) = ReLU of the convolution of x (N, C, H, W) with wb (F, C*kernel*kernel + 1:
    the filters, then the bias), `chunk` samples at a time, so that ReLU runs on each chunk's output
    while it is in cache; cols (N, CKK + 1, OH*OW) receives the columns with their row of ones (the
    bias's), which the backward reads again; xp (chunk, C, Hp, Wp) when pad > 0, else None."""
    n = len(x)
    for s in range(0, n, chunk):
        m = min(chunk, n - s)
        im2col_pooled(x[s:s + m], kernel, stride, pad, 1, cols[s:s + m], xp[:m] if pad else None)
        out = y[s:s + m]
        np.matmul(wb, cols[s:s + m], out=out)  # (F, CKK + 1) @ (m, CKK + 1, OH*OW)
        np.maximum(out, 0, out=out)


def conv_relu_backward(dy, y, cols, wb, kernel, stride, pad, chunk, work, gsum, dx=None):
    """The gradients of conv_relu_forward from dy (N, F, OH*OW) of its y: gsum (F, CKK + 1) = the
    filters' and the bias's gradient, dx (N, C, H, W) unless None. work: (da (chunk, F, OH*OW), gw
    (N, F, CKK + 1), dcols (chunk, CKK, OH*OW) or None, xp (chunk, C, Hp, Wp) or None)."""
    da, gw, dcols, xp = work
    n, ckk = len(dy), gsum.shape[1] - 1
    for s in range(0, n, chunk):
        m = min(chunk, n - s)
        d = da[:m]
        np.greater(y[s:s + m], 0, out=d)  # ReLU's mask written into the gradient itself, then scaled
        np.multiply(d, dy[s:s + m], out=d)
        np.matmul(d, cols[s:s + m].transpose(0, 2, 1), out=gw[s:s + m])  # (m, F, OH*OW) @ (m, OH*OW, CKK + 1)
        if dx is not None:
            np.matmul(wb[:, :ckk].T, d, out=dcols[:m])  # (CKK, F) @ (m, F, OH*OW)
            col2im_pooled(dcols[:m], kernel, stride, pad, 1, dx[s:s + m], xp[:m] if pad else None)
    np.sum(gw, axis=0, out=gsum)
