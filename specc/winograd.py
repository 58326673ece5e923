"""Winograd minimal filtering for 3x3 stride-1 convolutions: the generated code's helpers of the
convolution's fast path (specc.layers.conv_winograd), beside specc.convpool's and specc.numerics'
and under the same rule: every function uses only `np` and the helpers of these modules, so that
the code generator can copy its source verbatim into a standalone module (see specc.codegen). The
tile layout and the copies into and out of it are specc.winograd_tiles'.
"""
from __future__ import annotations

import numpy as np

from specc.winograd_tiles import (
    _winograd_chunk,
    _winograd_gather,
    _winograd_retile,
    _winograd_scatter,
    _winograd_untile,
    _winograd_views,
)

# Winograd minimal filtering F(m x m, 3 x 3), m = 2 or 4 (Lavin & Gray, 2016), for 3x3 stride-1
# convolutions: each m x m output tile comes from an a x a input tile d (a = m + 2) as
# A^T [(G g G^T) * (B^T d B)] A, summed over input channels: a^2 multiplies per channel pair and
# tile instead of 9 m^2 (16 for 4 outputs, 36 for 16). The a^2 tile positions are a^2 GEMMs over
# the channels, (k*T, C) @ (C, F). Every transform is one more matrix product, over all of a chunk's
# tiles at once, with a Kronecker product (B^T (x) B^T, A^T (x) A^T, G (x) G): BLAS applies a small
# matrix to many columns in one pass, where NumPy would take one pass per add.
# Layout (specc.winograd_tiles): a chunk of k samples is copied (padded) into xp (Hq, Wq, k, C),
# samples and channels last, and its overlapping tiles into (a, a, th, tw, k, C), so the position
# (i, j) of every tile is one contiguous (th*tw*k, C) matrix. Outputs come out as (m, m, th, tw, k, F)
# before they are copied out, to NCHW or (between two of these convolutions) to (H, W, N, C).
# Accuracy: F(2x2) uses 0, +-1 and 1/2 only (float32 error at the level of direct convolution); F(4x4)
# multiplies by up to 25 and 64 and by 1/6, 1/12, 1/24 (see tests/test_winograd.py for the bound).


def winograd_matrices(m, dtype):
    """(B^T, G, A^T) of F(m x m, 3 x 3): (a, a), (a, 3), (m, a) with a = m + 2. Column 1 of A^T is
    all ones, so a constant added to the products at tile position (1, 1) adds to every output."""
    if m == 2:
        bt = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]
        g = [[1, 0, 0], [1 / 2, 1 / 2, 1 / 2], [1 / 2, -1 / 2, 1 / 2], [0, 0, 1]]
        at = [[1, 1, 1, 0], [0, 1, -1, -1]]
    else:  # interpolation points 0, 1, -1, 2, -2 and infinity
        bt = [[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
              [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]]
        g = [[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
             [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]]
        at = [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]]
    return np.array(bt, dtype), np.array(g, dtype), np.array(at, dtype)


def winograd_mats_size(m):
    """Values in the flat buffer of winograd_filters' Kronecker products for F(m x m, 3 x 3)."""
    a = m + 2
    return a ** 4 + m * m * a * a + 9 * a * a


def _winograd_kron(mats, a):
    """Views of the flat buffer `mats`: B^T (x) B^T (a^2, a^2), A^T (x) A^T (m^2, a^2), G (x) G (a^2, 9)."""
    m = a - 2
    bk, ak = a ** 4, a ** 4 + m * m * a * a
    return (mats[:bk].reshape(a * a, a * a), mats[bk:ak].reshape(m * m, a * a),
            mats[ak:ak + 9 * a * a].reshape(a * a, 9))


def winograd_filters(w, mats, u, ut):
    """(F, C, 3, 3) filters -> u (a^2, F, C): G g G^T at each tile position (a^2 = 16: F(2x2), 36:
    F(4x4)), and ut (a^2, C, F) the same transposed (BLAS multiplies by a contiguous (C, F) matrix up
    to twice as fast as by a transposed view, and by a contiguous (F, C) one likewise); mats
    (winograd_mats_size(m) values) receives the Kronecker products the passes use."""
    f, c = w.shape[:2]
    a = int(round(u.shape[0] ** 0.5))
    bk, ak, gk = _winograd_kron(mats, a)
    bt, g, at = winograd_matrices(a - 2, w.dtype)
    # kron(P, Q)[(r, s), (i, j)] = P[r, i] * Q[s, j]
    np.multiply(bt[:, None, :, None], bt[None, :, None, :], out=bk.reshape(a, a, a, a))
    np.multiply(at[:, None, :, None], at[None, :, None, :], out=ak.reshape(a - 2, a - 2, a, a))
    np.multiply(g[:, None, :, None], g[None, :, None, :], out=gk.reshape(a, a, 3, 3))
    np.matmul(gk, w.reshape(f * c, 9).T, out=u.reshape(a * a, f * c))  # (a^2, 9) @ (9, F*C)
    np.copyto(ut, u.transpose(0, 2, 1))


def winograd_filters_grad(du, mats, dw):
    """Adjoint of winograd_filters: du (a^2, F, C) -> dw (F, C, 3, 3) = G^T du G."""
    f, c = dw.shape[:2]
    a = int(round(du.shape[0] ** 0.5))
    gk = _winograd_kron(mats, a)[2]
    np.matmul(du.reshape(a * a, f * c).T, gk, out=dw.reshape(f * c, 9))  # (F*C, a^2) @ (a^2, 9)


def _winograd_outputs(x, ut, mats, b, pad, work, tiles, borders=True):
    """A chunk's outputs before the copy out of the tiles: ys (m, m, th, tw, k, F), where ys[i, j, r, q]
    is output pixel (m*r + i, m*q + j), from the chunk x (H, W, k, C); tiles (a^2, th*tw*k, C)
    receives its transformed tiles B^T d B (winograd_backward reads them); borders as in
    _winograd_gather."""
    h, w, k, c = x.shape
    f = ut.shape[2]
    a = int(round(ut.shape[0] ** 0.5))
    m = a - 2
    xp, raw, _, prod, ys = _winograd_views(work, a, k, c, f, h + 2 * pad - 2, w + 2 * pad - 2)
    rows = tiles.shape[1]
    bk, ak = _winograd_kron(mats, a)[:2]
    _winograd_gather(x, pad, xp, raw, borders)
    np.matmul(bk, raw.reshape(a * a, rows * c), out=tiles.reshape(a * a, rows * c))  # B^T d B
    # (a^2, k*T, C) @ (a^2, C, F) -> (a^2, k*T, F)
    np.matmul(tiles, ut, out=prod.reshape(a * a, rows, f))
    prod.reshape(a * a, rows, f)[a + 1] += b  # the bias, through A^T's column of ones
    np.matmul(ak, prod, out=ys.reshape(m * m, rows * f))  # A^T M A
    return ys


def winograd_forward(x, ut, mats, b, pad, chunk, work, v, y, relu=False, hwnc_in=False, hwnc_out=False):
    """y (N, F, OH, OW) = the 3x3 convolution of x (N, C, H, W), padded by `pad`, with filters
    transformed into ut (a^2, C, F) (mats: their Kronecker products, see winograd_filters), plus the
    bias b (F,), then ReLU if `relu`, a few samples at a time: `chunk` samples' tiles and products
    (flat buffers in `work`: xp, raw, tiles, prod, ys) stay in cache. v (N, winograd_tile_size)
    receives the transformed tiles B^T d B, chunk by chunk, for winograd_backward (cheaper than
    transforming them again). hwnc_in, hwnc_out: x, y are (H, W, N, C) and (OH, OW, N, F)."""
    n, c = (x.shape[2], x.shape[3]) if hwnc_in else x.shape[:2]
    a = int(round(ut.shape[0] ** 0.5))
    for i in range(0, n, chunk):
        k = min(chunk, n - i)
        tiles = v[i:i + k].reshape(a * a, -1, c)
        ys = _winograd_outputs(_winograd_chunk(x, i, k, hwnc_in), ut, mats, b, pad, work, tiles,
                               i == 0 or k < chunk)  # the padding of the first chunk stays for the next
        _winograd_untile(ys, y, i, relu, hwnc_out)


# The convolution, ReLU and a max pooling whose size x size windows tile the output and each m x m
# output tile (size divides m), as one pass: the pooling takes its maxima over the tiles' outputs
# where the products leave them, (m, m, th, tw, k, F) (window position (di, dj) of pooled pixel
# (I, J) of a tile is output (size*I + di, size*J + dj)), and ReLU runs on them (it commutes with
# max), so that only the pooled output, size^2 times smaller, is copied out; the backward spreads
# the pooled gradient over the same layout, where the products' gradient starts.


def winograd_pooled_forward(x, ut, mats, b, pad, size, chunk, work, v, y, later=None, hwnc_in=False,
                            hwnc_out=False):
    """winograd_forward, then the maxima of its size x size windows, then ReLU: y (N, F, OH/size,
    OW/size). later (N, size^2 - 1, windows * F) bool, unless None: whether cell p + 1 of each window
    (in row-major order) beats every cell before it, from which the backward finds its first
    maximum."""
    n, c = (x.shape[2], x.shape[3]) if hwnc_in else x.shape[:2]
    a = int(round(ut.shape[0] ** 0.5))
    m, f, cells = a - 2, ut.shape[2], size * size
    q = m // size
    prod = work[3]
    for i in range(0, n, chunk):
        k = min(chunk, n - i)
        tiles = v[i:i + k].reshape(a * a, -1, c)
        ys = _winograd_outputs(_winograd_chunk(x, i, k, hwnc_in), ut, mats, b, pad, work, tiles,
                               i == 0 or k < chunk)  # the padding of the first chunk stays for the next
        th, tw = ys.shape[2:4]
        grid = ys.reshape(q, size, q, size, th, tw, k, f)
        top = prod[:q * q * th * tw * k * f].reshape(q, q, th, tw, k, f)  # prod is free again
        flags = None if later is None else later[i:i + k].reshape(cells - 1, q, q, th, tw, k, f)
        best = grid[:, 0, :, 0]
        for p in range(1, cells):
            cell = grid[:, p // size, :, p % size]
            if flags is not None:
                np.greater(cell, best, out=flags[p - 1])
            best = np.maximum(best, cell, out=top)
        _winograd_untile(best, y, i, True, hwnc_out)


def winograd_pooled_backward(v, dy, y, later, u, mats, pad, size, chunk, work, du, du_sum, db, dx, hwnc_in=False,
                             hwnc_out=False):
    """The gradients of winograd_pooled_forward from dy, the gradient of its y: ReLU's mask, then
    each window's gradient goes to its first maximum, the last of its cells that beat every cell
    before it, else its first cell (as the reference's argmax); then as winograd_backward."""
    n, f, ph, pw = (dy.shape[2], dy.shape[3], *dy.shape[:2]) if hwnc_out else dy.shape
    c = u.shape[2]
    a = int(round(u.shape[0] ** 0.5))
    m, cells = a - 2, size * size
    q = m // size
    oh, ow = ph * size, pw * size
    th, tw = oh // m, ow // m
    du_sum[...] = 0
    db[...] = 0
    prod = work[3]
    for i in range(0, n, chunk):
        k = min(chunk, n - i)
        ys = _winograd_views(work, a, k, c, f, oh, ow)[4]
        part = q * q * th * tw * k * f
        g = prod[:part].reshape(q, q, th, tw, k, f)  # prod is free until the products' gradient
        rest = prod[part:2 * part].reshape(q, q, th, tw, k, f)
        _winograd_retile(dy, i, g, y, hwnc_out)
        grid = ys.reshape(q, size, q, size, th, tw, k, f)
        flags = later[i:i + k].reshape(cells - 1, q, q, th, tw, k, f)
        for p in range(cells - 1, 0, -1):
            cell = grid[:, p // size, :, p % size]
            np.multiply(g, flags[p - 1], out=cell)
            g = np.subtract(g, cell, out=rest)  # what a later cell took, earlier ones do not get
        np.copyto(grid[:, 0, :, 0], g)
        _winograd_products_grad(ys, v[i:i + k], u, mats, pad, work, du, du_sum, db,
                                None if dx is None else _winograd_chunk(dx, i, k, hwnc_in))


def winograd_backward(v, dy, u, mats, pad, chunk, work, du, du_sum, db, dx, y=None, hwnc_in=False, hwnc_out=False):
    """The gradients of winograd_forward, from its transformed tiles v: du_sum (a^2, F, C) of the
    transformed filters, db (F,) of the bias, and dx (N, C, H, W) unless None; du (a^2, F, C) is
    scratch. With y, the output of a forward with relu, dy is the gradient of y."""
    n, f, oh, ow = (dy.shape[2], dy.shape[3], *dy.shape[:2]) if hwnc_out else dy.shape
    c = u.shape[2]
    a = int(round(u.shape[0] ** 0.5))
    du_sum[...] = 0
    db[...] = 0
    for i in range(0, n, chunk):
        k = min(chunk, n - i)
        ys = _winograd_views(work, a, k, c, f, oh, ow)[4]
        _winograd_retile(dy, i, ys, y, hwnc_out)
        _winograd_products_grad(ys, v[i:i + k], u, mats, pad, work, du, du_sum, db,
                                None if dx is None else _winograd_chunk(dx, i, k, hwnc_in))


def _winograd_products_grad(ys, vk, u, mats, pad, work, du, du_sum, db, dx):
    """A chunk's share of winograd_backward from ys (m, m, th, tw, k, F), the gradient of its
    outputs in _winograd_outputs' layout: du_sum and db accumulate, dx (H, W, k, C), a view of the
    chunk's input gradient, unless None."""
    m, th, tw, k, f = ys.shape[1:]
    a, c = m + 2, u.shape[2]
    rows = th * tw * k
    xp, raw, dv, dm, _ = _winograd_views(work, a, k, c, f, th * m, tw * m)
    bk, ak = _winograd_kron(mats, a)[:2]
    np.matmul(ak.T, ys.reshape(m * m, rows * f), out=dm)  # A dY A^T: the products' gradient
    dm = dm.reshape(a * a, rows, f)
    # the bias's gradient, the sum of dY, is the sum of the products' gradient at tile position
    # (1, 1) (A^T's column of ones): 1/m^2 of dY's values; du is free until the product below
    np.add(db, np.sum(dm[a + 1], axis=0, out=du.reshape(-1)[:f]), out=db)
    np.matmul(dm.transpose(0, 2, 1), vk.reshape(a * a, rows, c), out=du)  # (a^2, F, k*T) @ (a^2, k*T, C)
    du_sum += du
    if dx is not None:
        np.matmul(dm, u, out=dv.reshape(a * a, rows, c))  # (a^2, k*T, F) @ (a^2, F, C): the tiles' gradient
        np.matmul(bk.T, dv.reshape(a * a, rows * c), out=raw.reshape(a * a, rows * c))  # B dV B^T
        _winograd_scatter(raw, xp.reshape(xp.shape[0], xp.shape[1], k * c))
        h, w = dx.shape[:2]
        np.copyto(dx, xp[pad:pad + h, pad:pad + w])
