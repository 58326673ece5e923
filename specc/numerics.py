"""Plain NumPy helpers shared by the reference layers and the generated code.

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


def im2col_t(x, kernel, stride, pad, out=None):
    """(N, C, H, W) -> (N, C*kernel*kernel, OH*OW): each sample's windows as columns.

    The layout lets one batched matmul, W (F, C*k*k) @ cols, give (N, F, OH*OW), which is
    already the (N, F, OH, OW) output: no transpose copy.
    """
    n, c = x.shape[:2]
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


def softmax_cross_entropy(scores, labels, probs):
    """Mean cross-entropy of softmax(scores) with class labels; softmax written into `probs`.

    Uses log-sum-exp, so the loss is exact and finite without the book's 1e-7.
    """
    n = scores.shape[0]
    np.subtract(scores, scores.max(axis=1, keepdims=True), out=probs)
    picked = probs[np.arange(n), labels]
    np.exp(probs, out=probs)
    sums = probs.sum(axis=1, keepdims=True)
    probs /= sums
    return float((np.log(sums).sum() - picked.sum()) / n)


def initial_values(table, dtype, seed=None):
    """Arrays from a table name -> (shape, init), init being ("normal", std), ("zeros",), ("ones",) or
    ("full", value).

    Normal draws come from one generator seeded with `seed`, in the table's order, in float64
    (so float32 and float64 networks start from the same values, rounded).
    """
    rng = np.random.default_rng(seed)
    out = {}
    for name, (shape, init) in table.items():
        if init[0] == "normal":
            out[name] = (rng.standard_normal(shape) * init[1]).astype(dtype)
        elif init[0] == "full":
            out[name] = np.full(shape, init[1], dtype)
        else:
            out[name] = (np.ones if init[0] == "ones" else np.zeros)(shape, dtype)
    return out
