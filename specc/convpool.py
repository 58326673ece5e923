"""Convolution and pooling on whole batches, for the reference layers and the generated code:
images' windows as matrix rows or columns (im2col and its adjoint col2im), pooling's windows and
their gradients, and the fused convolution + max pooling pass.

Every function here uses only `np` and other functions of this module, so the code
generator can copy its source verbatim into a standalone module (see specc.codegen).
"""
from __future__ import annotations

import numpy as np


def padded(x, kernel, stride, pad, fill=0.0):
    """x with `pad` rows and columns of `fill` around each image, and the output size (OH, OW)."""
    _, _, h, w = x.shape
    oh, ow = output_size(h, w, kernel, stride, pad)
    if pad:
        x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)), constant_values=fill)
    return x, oh, ow


def output_size(h, w, kernel, stride, pad):
    """(OH, OW) of a window sliding over an h x w image: (h + 2*pad - kernel) // stride + 1."""
    return (h + 2 * pad - kernel) // stride + 1, (w + 2 * pad - kernel) // stride + 1


def im2col(x, kernel, stride, pad, out=None):
    """(N, C, H, W) images -> (N*OH*OW, C*kernel*kernel) rows, one per output pixel.

    One strided view and one copy; no Python loop over the batch or the pixels.
    """
    n, c = x.shape[:2]
    x, oh, ow = padded(x, kernel, stride, pad)
    s0, s1, s2, s3 = x.strides
    # (N, OH, OW, C, k, k) view of every window, in the row order of the result
    windows = np.lib.stride_tricks.as_strided(
        x, (n, oh, ow, c, kernel, kernel), (s0, s2 * stride, s3 * stride, s1, s2, s3), writeable=False)
    if out is None:
        out = np.empty((n * oh * ow, c * kernel * kernel), dtype=x.dtype)
    np.copyto(out.reshape(n, oh, ow, c, kernel, kernel), windows)
    return out


def col2im(cols, shape, kernel, stride, pad, out=None):
    """Inverse of im2col for gradients: add each row back into the window it came from.

    Loops over the kernel's k*k offsets only; each step is one strided add over the whole batch.
    """
    n, c, h, w = shape
    oh, ow = output_size(h, w, kernel, stride, pad)
    g = cols.reshape(n, oh, ow, c, kernel, kernel)
    padded = np.zeros((n, c, h + 2 * pad, w + 2 * pad), dtype=cols.dtype)
    for i in range(kernel):
        for j in range(kernel):
            # (N, OH, OW, C) -> (N, C, OH, OW) view added into every stride-th pixel
            rows, cols = slice(i, i + stride * oh, stride), slice(j, j + stride * ow, stride)
            padded[:, :, rows, cols] += g[:, :, :, :, i, j].transpose(0, 3, 1, 2)
    inner = padded[:, :, pad:pad + h, pad:pad + w] if pad else padded
    if out is None:
        return np.ascontiguousarray(inner)
    np.copyto(out, inner)
    return out


def pad_into(x, pad, xp):
    """x (N, C, H, W) with `pad` zeros on each side, written into xp (N, C, H + 2*pad, W + 2*pad)."""
    h, w = x.shape[2:]
    xp[:, :, :pad] = 0
    xp[:, :, pad + h:] = 0
    xp[:, :, pad:pad + h, :pad] = 0
    xp[:, :, pad:pad + h, pad + w:] = 0
    np.copyto(xp[:, :, pad:pad + h, pad:pad + w], x)
    return xp


def im2col_t(x, kernel, stride, pad, out=None, xp=None):
    """(N, C, H, W) -> (N, C*kernel*kernel, OH*OW): each sample's windows as columns.

    The layout lets one batched matmul, W (F, C*k*k) @ cols, give (N, F, OH*OW), which is
    already the (N, F, OH, OW) output: no transpose copy. With pad > 0 the padded images go
    into xp when given (nothing allocated), else into a new array.
    """
    n, c = x.shape[:2]
    if pad and xp is not None:
        oh, ow = output_size(*x.shape[2:], kernel, stride, pad)
        x = pad_into(x, pad, xp)
    else:
        x, oh, ow = padded(x, kernel, stride, pad)
    s0, s1, s2, s3 = x.strides
    windows = np.lib.stride_tricks.as_strided(
        x, (n, c, kernel, kernel, oh, ow), (s0, s1, s2, s3, s2 * stride, s3 * stride), writeable=False)
    if out is None:
        out = np.empty((n, c * kernel * kernel, oh * ow), dtype=x.dtype)
    np.copyto(out.reshape(n, c, kernel, kernel, oh, ow), windows)
    return out


def col2im_t(cols, shape, kernel, stride, pad, out=None):
    """Inverse of im2col_t for gradients: add each column back into its window (k*k strided adds)."""
    n, c, h, w = shape
    oh, ow = output_size(h, w, kernel, stride, pad)
    g = cols.reshape(n, c, kernel, kernel, oh, ow)
    if pad or out is None:
        target = np.zeros((n, c, h + 2 * pad, w + 2 * pad), dtype=cols.dtype)
    else:
        target = out
        target[...] = 0
    for i in range(kernel):
        for j in range(kernel):
            target[:, :, i:i + stride * oh:stride, j:j + stride * ow:stride] += g[:, :, i, j]
    if target is out:
        return out
    inner = target[:, :, pad:pad + h, pad:pad + w] if pad else target
    if out is None:
        return np.ascontiguousarray(inner)
    np.copyto(out, inner)
    return out


def pool_windows(x, size, stride, pad, fill=-np.inf):
    """(N, C, H, W) -> (N, C, OH, OW, size*size) copy of every pooling window; padded cells hold
    `fill` (-inf for max pooling, so that they never win; 0 for average pooling)."""
    n, c = x.shape[:2]
    x, oh, ow = padded(x, size, stride, pad, fill=fill)
    s0, s1, s2, s3 = x.strides
    windows = np.lib.stride_tricks.as_strided(
        x, (n, c, oh, ow, size, size), (s0, s1, s2 * stride, s3 * stride, s2, s3), writeable=False)
    return windows.reshape(n, c, oh, ow, size * size)


def pool_backward(dy, argmax, shape, size, stride, pad):
    """Gradient of max pooling: each output's gradient goes to the first maximum of its window."""
    n, c, oh, ow = dy.shape
    cols = np.zeros((n, c, oh, ow, size * size), dtype=dy.dtype)
    np.put_along_axis(cols, argmax[..., None], dy[..., None], axis=-1)
    # the pooling windows in im2col's (N, OH, OW, C, k, k) order, then scattered back
    cols = cols.reshape(n, c, oh, ow, size, size).transpose(0, 2, 3, 1, 4, 5)
    return col2im(cols.reshape(n * oh * ow, c * size * size), shape, size, stride, pad)


def avg_pool_backward(dy, shape, size, stride, pad):
    """Gradient of average pooling: each output's gradient, divided by size*size, to every cell of its window."""
    n, c, oh, ow = dy.shape
    share = np.broadcast_to((dy / (size * size))[..., None, None], (n, c, oh, ow, size, size))
    cols = share.transpose(0, 2, 3, 1, 4, 5)  # im2col's (N, OH, OW, C, k, k) order
    return col2im(np.ascontiguousarray(cols).reshape(n * oh * ow, c * size * size), shape, size, stride, pad)


def tiled_max_pool(x, k, chunk, y):
    """y (N, C, H/k, W/k) = the maximum of each k x k tile of x (N, C, H, W): element-wise maxima of
    the k*k strided views, `chunk` samples at a time (their rows stay in cache between the views)."""
    n, c, oh, ow = y.shape
    grid = x.reshape(n, c, oh, k, ow, k)
    for s in range(0, n, chunk):
        part, out = grid[s:s + chunk], y[s:s + chunk]
        views = [part[:, :, :, i, :, j] for i in range(k) for j in range(k)]
        if len(views) == 1:
            np.copyto(out, views[0])
            continue
        np.maximum(views[0], views[1], out=out)
        for v in views[2:]:
            np.maximum(out, v, out=out)


def tiled_max_pool_backward(x, y, dy, k, chunk, hit, taken, dx):
    """dx (N, C, H, W): each tile's gradient dy to the first maximum of the tile (row by row, as
    the reference's argmax), zeros elsewhere; hit and taken (chunk, C, H/k, W/k) boolean scratch."""
    n, c, oh, ow = y.shape
    grid, target = x.reshape(n, c, oh, k, ow, k), dx.reshape(n, c, oh, k, ow, k)
    for s in range(0, n, chunk):
        m = min(chunk, n - s)
        h, t, top, g = hit[:m], taken[:m], y[s:s + m], dy[s:s + m]
        for p in range(k * k):
            i, j = divmod(p, k)
            np.equal(grid[s:s + m, :, :, i, :, j], top, out=h)
            if p:  # a maximum already taken earlier in the tile wins
                np.greater(h, t, out=h)
            np.multiply(g, h, out=target[s:s + m, :, :, i, :, j])
            if p == 0:
                np.copyto(t, h)
            elif p < k * k - 1:
                np.logical_or(t, h, out=t)


# A convolution whose output goes through ReLU into a size x size max pooling (stride = size), as one
# pass: the columns put the output's pixels in the pooling's order, (size*size, OH/size * OW/size),
# so that the output of one matmul per sample holds each window position's pixels together and the
# pooling is an element-wise maximum of size*size contiguous blocks; the bias rides in the matmul
# as a row of ones. A few samples at a time, so that each chunk's columns, output and gradient
# stay in cache from one step to the next.


def im2col_pooled(x, kernel, stride, pad, size, out, xp=None):
    """(N, C, H, W) -> out (N, C*kernel*kernel + 1, OH*OW): im2col_t's columns with the pixels in the
    pooling's order (pixel (size*i + di, size*j + dj) at di*size + dj, then i, j) and a last row of
    ones; xp (N, C, H + 2*pad, W + 2*pad) holds the padded images when pad > 0."""
    n, c = x.shape[:2]
    oh, ow = output_size(*x.shape[2:], kernel, stride, pad)
    if pad:
        x = pad_into(x, pad, xp)
    th, tw, ckk = oh // size, ow // size, c * kernel * kernel
    s0, s1, s2, s3 = x.strides
    windows = np.lib.stride_tricks.as_strided(
        x, (n, c, kernel, kernel, size, size, th, tw),
        (s0, s1, s2, s3, s2 * stride, s3 * stride, s2 * stride * size, s3 * stride * size), writeable=False)
    rows = out.reshape(n, ckk + 1, size * size * th * tw)
    np.copyto(rows[:, :ckk].reshape(n, c, kernel, kernel, size, size, th, tw), windows)
    rows[:, ckk] = 1
    return out


def col2im_pooled(cols, kernel, stride, pad, size, out, xp=None):
    """Adjoint of im2col_pooled without its row of ones: cols (N, C*kernel*kernel, OH*OW) added back
    into out (N, C, H, W), kernel*kernel*size*size strided adds; xp as in im2col_pooled."""
    n, c, h, w = out.shape
    oh, ow = output_size(h, w, kernel, stride, pad)
    th, tw, step = oh // size, ow // size, stride * size
    g = cols.reshape(n, c, kernel, kernel, size, size, th, tw)
    target = xp if pad else out
    target[...] = 0
    for i in range(kernel):
        for j in range(kernel):
            for di in range(size):
                for dj in range(size):
                    r, q = di * stride + i, dj * stride + j
                    target[:, :, r:r + step * th:step, q:q + step * tw:step] += g[:, :, i, j, di, dj]
    if pad:
        np.copyto(out, target[:, :, pad:pad + h, pad:pad + w])
    return out


def pooled_conv_forward(x, wb, kernel, stride, pad, size, work, y, later=None):
    """Convolution, then max pooling: y (N, F, P) = the maximum of each size x size window of the
    convolution of x (N, C, H, W) with wb (F, C*kernel*kernel + 1: the filters, then the bias).
    later (N, F, size*size - 1, P) bool, unless None: whether cell p + 1 of a window (in the pooling's
    row-major order) beats every cell before it, from which the backward finds its first maximum.
    work: (cols (N, CKK + 1, size*size*P), the columns (the backward reads them again), out (chunk,
    F, size*size, P), a chunk's convolution, xp (chunk, C, Hp, Wp) when pad > 0, else None)."""
    cols, out, xp = work
    n, f, cells, chunk = len(x), len(wb), size * size, len(out)
    for s in range(0, n, chunk):
        m = min(chunk, n - s)
        part, top = out[:m], y[s:s + m]
        im2col_pooled(x[s:s + m], kernel, stride, pad, size, cols[s:s + m], xp[:m] if pad else None)
        np.matmul(wb, cols[s:s + m], out=part.reshape(m, f, -1))  # (F, CKK + 1) @ (m, CKK + 1, OH*OW)
        best = part[:, :, 0]
        for p in range(1, cells):
            if later is not None:
                np.greater(part[:, :, p], best, out=later[s:s + m, :, p - 1])
            best = np.maximum(best, part[:, :, p], out=top)
        if cells == 1:
            np.copyto(top, best)


def pooled_conv_backward(dy, later, cols, wb, kernel, stride, pad, size, work, gsum, dx=None):
    """The gradients of pooled_conv_forward from dy (N, F, P) of its y: each window's dy goes to its
    first maximum, the last of its cells that beat every cell before it, else its first cell (as the
    reference's argmax); gsum (F, CKK + 1) = the filters' and the bias's gradient; dx (N, C, H, W)
    unless None. work: (rest (chunk, F, P), da (chunk, F, size*size, P), gw (N, F, CKK + 1), dcols
    (chunk, CKK, size*size*P) or None, xp (chunk, C, Hp, Wp) or None)."""
    rest, da, gw, dcols, xp = work
    n, f, cells, chunk = len(dy), len(wb), size * size, len(da)
    ckk = gsum.shape[1] - 1
    for s in range(0, n, chunk):
        m = min(chunk, n - s)
        d, g = da[:m], dy[s:s + m]
        for p in range(cells - 1, 0, -1):
            np.multiply(g, later[s:s + m, :, p - 1], out=d[:, :, p])
            g = np.subtract(g, d[:, :, p], out=rest[:m])  # what a later cell took, earlier ones do not get: g - g is 0
        np.copyto(d[:, :, 0], g)
        grad = d.reshape(m, f, -1)
        np.matmul(grad, cols[s:s + m].transpose(0, 2, 1), out=gw[s:s + m])  # (m, F, OH*OW) @ (m, OH*OW, CKK + 1)
        if dx is not None:
            np.matmul(wb[:, :ckk].T, grad, out=dcols[:m])  # (CKK, F) @ (m, F, OH*OW)
            col2im_pooled(dcols[:m], kernel, stride, pad, size, dx[s:s + m], xp[:m] if pad else None)
    np.sum(gw, axis=0, out=gsum)


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
