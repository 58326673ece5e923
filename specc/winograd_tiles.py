"""Winograd's tile layout: the flat per-chunk buffers of specc.winograd's passes, their views, and
the copies between the activations and the tiles. Generated-code helpers under specc.winograd's
rule: only `np` and the helpers of specc.codegen's HELPER_MODULES, so that their source can be
copied verbatim.

A chunk of k samples is laid out samples and channels last: its input is copied, zero-padded, into
xp (Hq, Wq, k, C), and one strided copy gathers its overlapping a x a input tiles (a = m + 2, stride
m) into raw (a, a, th, tw, k*C), so that position (i, j) of every tile is one contiguous
(th*tw*k, C) matrix. The outputs come out of the products as ys (m, m, th, tw, k, F) and are copied
out to the activation. Activations are (N, C, H, W), except between two Winograd convolutions,
where the compiler stores them channels last with the batch inside, (H, W, N, C) ("hwnc"), so that
the copies into and out of the tiles move runs of k*C contiguous values instead of transposing.
"""
from __future__ import annotations

import numpy as np


def winograd_tile_size(m, c, oh, ow):
    """Values per sample of winograd_forward's transformed tiles: (m + 2)^2 positions x tiles x C."""
    return (m + 2) ** 2 * (oh // m) * (ow // m) * c


def winograd_work_sizes(m, chunk, c, f, oh, ow):
    """Element counts of the flat (per chunk) buffers winograd_forward and winograd_backward use with
    F(m x m, 3 x 3)."""
    a, t = m + 2, (oh // m) * (ow // m)
    return {"xp": (oh + m) * (ow + m) * chunk * c, "raw": a * a * t * chunk * c, "tiles": a * a * t * chunk * c,
            "prod": a * a * t * chunk * f, "ys": chunk * f * oh * ow}


def _winograd_views(work, a, k, c, f, oh, ow):
    """(xp, raw, tiles, prod, ys) for a chunk of k samples: views at the start of the flat buffers in
    `work`, xp (Hq, Wq, k, C), raw and tiles (a, a, th, tw, k*C), prod (a^2, th*tw*k*F), ys
    (m, m, th, tw, k, F)."""
    m = a - 2
    th, tw = oh // m, ow // m
    xp, raw, tiles, prod, ys = work
    grid, cells = a * a * th * tw * k * c, a * a * th * tw * k * f
    return (xp[:(oh + m) * (ow + m) * k * c].reshape(oh + m, ow + m, k, c),
            raw[:grid].reshape(a, a, th, tw, k * c), tiles[:grid].reshape(a, a, th, tw, k * c),
            prod[:cells].reshape(a * a, th * tw * k * f), ys[:oh * ow * k * f].reshape(m, m, th, tw, k, f))


def _winograd_chunk(a, i, k, hwnc):
    """Samples i to i + k of an (N, C, H, W) array, or of an (H, W, N, C) one when hwnc, as an
    (H, W, k, C) view."""
    return a[:, :, i:i + k] if hwnc else a[i:i + k].transpose(2, 3, 0, 1)


def _winograd_gather(x, pad, xp, raw, borders=True):
    """x (H, W, k, C), a chunk's view -> xp (Hq, Wq, k, C) zero-padded (rows and columns past the
    padding unused; the zeros written unless `borders` is False: a chunk of the same size wrote
    them), then raw (a, a, th, tw, k*C): the a x a input tile of every output tile (stride m,
    overlapping)."""
    h, w = x.shape[:2]
    a, th, tw = raw.shape[0], raw.shape[2], raw.shape[3]
    hp, wp = (a - 2) * th + 2, (a - 2) * tw + 2  # h + 2*pad, w + 2*pad
    if pad and borders:
        xp[:pad, :wp] = 0
        xp[pad + h:hp, :wp] = 0
        xp[pad:pad + h, :pad] = 0
        xp[pad:pad + h, pad + w:wp] = 0
    np.copyto(xp[pad:pad + h, pad:pad + w], x)
    rs, cs, es = xp.strides[0], xp.strides[1], xp.strides[3]
    kc = raw.shape[4]
    m = a - 2
    tiles = np.lib.stride_tricks.as_strided(xp, (a, a, th, tw, kc), (rs, cs, m * rs, m * cs, es), writeable=False)
    np.copyto(raw, tiles)


def _winograd_scatter(draw, dxp):
    """Adjoint of the gather: draw (a, a, th, tw, k*C) -> dxp (Hq, Wq, k*C) (overwritten), each tile
    added back where it came from (tiles overlap by 2 rows and columns)."""
    a, th, tw, kc = draw.shape[0], draw.shape[2], draw.shape[3], draw.shape[4]
    m = a - 2
    # tile (tr, tc)'s row i = m*iq + ir and column j = m*jq + jr land on grid[tr + iq, ir, tc + jq, jr]:
    # its first m rows and columns fill the grid's blocks, the last 2 of each are added one block on
    grid = dxp.reshape(th + 1, m, tw + 1, m, kc)
    grid[th] = 0
    grid[:th, :, tw] = 0
    np.copyto(grid[:th, :, :tw], draw[:m, :m].transpose(2, 0, 3, 1, 4))
    grid[:th, :, 1:, :2] += draw[:m, m:].transpose(2, 0, 3, 1, 4)
    grid[1:, :2, :tw] += draw[m:, :m].transpose(2, 0, 3, 1, 4)
    grid[1:, :2, 1:, :2] += draw[m:, m:].transpose(2, 0, 3, 1, 4)


def _winograd_grid(y, i, k, m):
    """Samples i to i + k of y (th*m, tw*m, N, F), a whole (contiguous) buffer, as a (th, m, tw, m, k, F)
    view: its rows and columns split into tiles (a reshape of the whole buffer is always a view;
    as_strided would cost more than the copy of a small chunk)."""
    oh, ow, n, f = y.shape
    return y.reshape(oh // m, m, ow // m, m, n, f)[:, :, :, :, i:i + k]


def _winograd_untile(ys, y, i, relu, hwnc):
    """ys (m, m, th, tw, k, F) -> samples i to i + k of y (N, F, th*m, tw*m), or of y (th*m, tw*m, N, F)
    when hwnc: pixel (m*r + p, m*q + s) from ys[p, s, r, q]; max(ys, 0) with relu."""
    m, th, tw, k, f = ys.shape[1:]
    if hwnc:  # one copy, of runs of k*F values
        pairs = [(_winograd_grid(y, i, k, m), ys.transpose(2, 0, 3, 1, 4, 5))]
    elif tw < m:  # few tiles a row: one copy, in an order of NumPy's choosing
        pairs = [(y[i:i + k].reshape(k, f, th, m, tw, m), ys.transpose(4, 5, 2, 0, 3, 1))]
    else:  # a column phase at a time: (k, F, th, m, tw) copies with rows of tw
        out = y[i:i + k].reshape(k, f, th, m, tw, m)
        pairs = [(out[..., s], ys[:, s].transpose(3, 4, 1, 0, 2)) for s in range(m)]
    for dst, src in pairs:
        if relu:
            np.maximum(src, 0, out=dst)
        else:
            np.copyto(dst, src)


def _winograd_retile(g, i, ys, y, hwnc):
    """Adjoint of _winograd_untile: samples i to i + k of g (as y there) -> ys (m, m, th, tw, k, F);
    times [y > 0] unless y, the output of ReLU (laid out as g), is None."""
    m, th, tw, k, f = ys.shape[1:]
    if hwnc:
        order = (1, 3, 0, 2, 4, 5)  # (th, m, tw, m, k, F) -> (m, m, th, tw, k, F)
        pairs = [(ys, _winograd_grid(g, i, k, m).transpose(order),
                  None if y is None else _winograd_grid(y, i, k, m).transpose(order))]
    else:
        grads = g[i:i + k].reshape(k, f, th, m, tw, m)
        masks = None if y is None else y[i:i + k].reshape(k, f, th, m, tw, m)
        pairs = [(ys[:, s], grads[..., s].transpose(3, 2, 4, 0, 1),
                  None if masks is None else masks[..., s].transpose(3, 2, 4, 0, 1)) for s in range(m)]
    for dst, src, mask in pairs:
        if mask is None:
            np.copyto(dst, src)
        else:  # the mask written into the tiles themselves (1.0 where y > 0), then scaled
            np.greater(mask, 0, out=dst)
            np.multiply(dst, src, out=dst)
