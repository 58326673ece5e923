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

    Uses log-sum-exp, so the loss is exact and finite without the book's 1e-7. The loss itself (N
    numbers) is taken in float64: in float16 a score's distance from the top score can overflow
    (-60000 and 60000 are 120000 apart), where the probability it stands for is merely 0.
    """
    n = scores.shape[0]
    top = scores.max(axis=1, keepdims=True)
    picked = scores[np.arange(n), labels].astype(np.float64) - top[:, 0]
    with np.errstate(over="ignore"):  # a float16 difference beyond 65504 is -inf, whose exp is the 0 it should be
        np.subtract(scores, top, out=probs)
    np.exp(probs, out=probs)
    sums = probs.sum(axis=1, keepdims=True)
    probs /= sums
    return float((np.log(sums.astype(np.float64)).sum() - picked.sum()) / n)


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


class WholeBatch:
    """What a layer that looks across the batch (BatchNorm's statistics, Dropout's masks) sees of the
    rest of it when this process holds the whole batch: its own sums, its own draws. Under MPI
    (mpiexec -n N specc train) each rank holds a share, and specc.training.world.Shares takes this
    one's place: the same three calls, reaching the other ranks' shares."""

    def sum(self, a):
        """Sums over this process's samples -> sums over the whole batch, in place."""
        return a

    def grad_sum(self, a):
        """Sums of gradients over this process's samples -> over the whole batch, in place, at this
        process's scale (its loss is the mean over its own samples)."""
        return a

    def uniform(self, rng, out):
        """`out` (this process's rows of the batch) filled with uniforms in [0, 1), as the whole
        batch draws them."""
        return rng.random(out=out, dtype=out.dtype)


# Winograd minimal filtering F(2x2, 3x3) (Lavin & Gray, 2016) for 3x3 stride-1 convolutions:
# each 2x2 output tile comes from a 4x4 input tile d as A^T [(G g G^T) * (B^T d B)] A, summed
# over input channels: 16 multiplies per channel pair and tile instead of 36. The 16 tile
# positions are 16 GEMMs over the channels, (F, C) @ (C, N*T). Transforms use 0, +-1 and 1/2
# only, so float32 rounding stays at the level of direct convolution.
# Layouts: tiles (16, C, N*T) and their products (16, F, N*T), T = th*tw tiles per image.


def winograd_filters(w, tmp, out):
    """(F, C, 3, 3) filters -> out (16, F, C): G g G^T at each tile position; tmp (F, C, 4, 3)."""
    f, c = w.shape[:2]
    g = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]], dtype=w.dtype)
    np.matmul(g, w, out=tmp)  # (4, 3) @ (F, C, 3, 3) -> (F, C, 4, 3)
    np.matmul(tmp, g.T, out=out.reshape(4, 4, f, c).transpose(2, 3, 0, 1))  # -> (F, C, 4, 4)


def winograd_filters_grad(du, tmp, out):
    """Adjoint of winograd_filters: du (16, F, C) -> out (F, C, 3, 3) = G^T du G; tmp (F, C, 3, 4)."""
    f, c = out.shape[:2]
    g = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]], dtype=du.dtype)
    np.matmul(g.T, du.reshape(4, 4, f, c).transpose(2, 3, 0, 1), out=tmp)  # (3, 4) @ (F, C, 4, 4)
    np.matmul(tmp, g, out=out)  # (F, C, 3, 4) @ (4, 3) -> (F, C, 3, 3)


def _pad_into(x, pad, xp):
    """x (N, C, H, W) with `pad` zeros on each side, written into xp; x itself when pad is 0."""
    if not pad:
        return x
    h, w = x.shape[2:]
    xp[:, :, :pad] = 0
    xp[:, :, pad + h:] = 0
    xp[:, :, pad:pad + h, :pad] = 0
    xp[:, :, pad:pad + h, pad + w:] = 0
    np.copyto(xp[:, :, pad:pad + h, pad:pad + w], x)
    return xp


def winograd_tiles(x, pad, xp, rows, out):
    """(N, C, H, W) images padded by `pad` -> out (16, C, N*T): B^T d B of every 4x4 tile d
    (stride 2), in two passes: rows (4, C, N, th, W + 2*pad), then columns.
    xp (N, C, H + 2*pad, W + 2*pad) holds the padded copy when pad > 0."""
    n, c = x.shape[:2]
    r = rows.shape[3]
    t = out.shape[2] // (n * r)
    x = _pad_into(x, pad, xp).transpose(1, 0, 2, 3)  # (C, N, Hp, Wp) view
    d = [x[:, :, i:i + 2 * r:2] for i in range(4)]  # row i of every tile: (C, N, th, Wp)
    np.subtract(d[0], d[2], out=rows[0])
    np.add(d[1], d[2], out=rows[1])
    np.subtract(d[2], d[1], out=rows[2])
    np.subtract(d[1], d[3], out=rows[3])
    tiles = out.reshape(4, 4, c, n, r, t)
    for a in range(4):
        e = [rows[a][..., j:j + 2 * t:2] for j in range(4)]
        np.subtract(e[0], e[2], out=tiles[a, 0])
        np.add(e[1], e[2], out=tiles[a, 1])
        np.subtract(e[2], e[1], out=tiles[a, 2])
        np.subtract(e[1], e[3], out=tiles[a, 3])


def winograd_untile(m, half, y):
    """Products m (16, F, N*T) -> y (N, F, OH, OW) = A^T m A per tile; half (2, 4, F, N*T)."""
    n, f, oh, ow = y.shape
    th, tw = oh // 2, ow // 2
    m = m.reshape(4, 4, f, n * th * tw)
    np.add(m[0], m[1], out=half[0])  # rows of A^T: [1, 1, 1, 0] and [0, 1, -1, -1]
    half[0] += m[2]
    np.subtract(m[1], m[2], out=half[1])
    half[1] -= m[3]
    s = half.reshape(2, 4, f, n, th, tw)
    out = y.reshape(n, f, th, 2, tw, 2).transpose(1, 0, 2, 3, 4, 5)  # (F, N, th, 2, tw, 2) view
    for i in range(2):
        np.add(s[i, 0], s[i, 1], out=out[:, :, :, i, :, 0])
        out[:, :, :, i, :, 0] += s[i, 2]
        np.subtract(s[i, 1], s[i, 2], out=out[:, :, :, i, :, 1])
        out[:, :, :, i, :, 1] -= s[i, 3]


def winograd_untile_grad(dy, half, dm):
    """Adjoint of winograd_untile: dy (N, F, OH, OW) -> dm (16, F, N*T); half (2, 4, F, N*T)."""
    n, f, oh, ow = dy.shape
    th, tw = oh // 2, ow // 2
    g = dy.reshape(n, f, th, 2, tw, 2).transpose(1, 0, 2, 3, 4, 5)
    s = half.reshape(2, 4, f, n, th, tw)
    for i in range(2):  # columns of A: [1, 1, 1, 0] for output 0, [0, 1, -1, -1] for output 1
        g0, g1 = g[:, :, :, i, :, 0], g[:, :, :, i, :, 1]
        np.copyto(s[i, 0], g0)
        np.add(g0, g1, out=s[i, 1])
        np.subtract(g0, g1, out=s[i, 2])
        np.negative(g1, out=s[i, 3])
    dm = dm.reshape(4, 4, f, n * th * tw)
    np.copyto(dm[0], half[0])
    np.add(half[0], half[1], out=dm[1])
    np.subtract(half[0], half[1], out=dm[2])
    np.negative(half[1], out=dm[3])


def winograd_tiles_grad(dv, pad, rows, dxp, dx):
    """Adjoint of winograd_tiles: dv (16, C, N*T) -> dx (N, C, H, W), each tile's B dv B^T added
    back where it came from (tiles overlap by 2) and the padding dropped. rows (4, C, N, th, Wp);
    dxp (N, C, H + 2*pad, W + 2*pad) when pad > 0."""
    n, c = dx.shape[:2]
    r, wp = rows.shape[3], rows.shape[4]
    t = (wp - 2) // 2
    v = dv.reshape(4, 4, c, n, r, t)
    for a in range(4):  # columns of B^T: [1,0,0,0], [0,1,-1,1], [-1,1,1,0], [0,0,0,-1]
        even, odd = rows[a][..., 0::2], rows[a][..., 1::2]  # (C, N, th, t + 1) each
        np.copyto(even[..., :t], v[a, 0])
        even[..., t] = 0
        even[..., 1:] += v[a, 1]
        even[..., 1:] += v[a, 2]
        even[..., 1:] -= v[a, 0]
        np.subtract(v[a, 1], v[a, 2], out=odd[..., :t])
        odd[..., :t] += v[a, 3]
        odd[..., t] = 0
        odd[..., 1:] -= v[a, 3]
    target = (dxp if pad else dx).transpose(1, 0, 2, 3)  # (C, N, Hp, Wp)
    even, odd = target[:, :, 0::2], target[:, :, 1::2]
    np.copyto(even[:, :, :r], rows[0])
    even[:, :, r] = 0
    even[:, :, 1:] += rows[1]
    even[:, :, 1:] += rows[2]
    even[:, :, 1:] -= rows[0]
    np.subtract(rows[1], rows[2], out=odd[:, :, :r])
    odd[:, :, :r] += rows[3]
    odd[:, :, r] = 0
    odd[:, :, 1:] -= rows[3]
    if pad:
        h, w = dx.shape[2:]
        np.copyto(dx, dxp[:, :, pad:pad + h, pad:pad + w])



def winograd_forward(x, u, pad, chunk, work, y):
    """y (N, F, OH, OW) = the 3x3 convolution of x (N, C, H, W), padded by `pad`, with filters
    transformed into u (16, F, C), a few samples at a time: `chunk` samples' tiles and products
    (flat buffers in `work`: xp, rows, tiles, prod, half) stay in cache."""
    n, c, h, w = x.shape
    f, oh, ow = y.shape[1:]
    for i in range(0, n, chunk):
        k = min(chunk, n - i)
        xp, rows, tiles, prod, half = _winograd_views(work, k, c, f, h, w, oh, ow, pad)
        winograd_tiles(x[i:i + k], pad, xp, rows, tiles)
        np.matmul(u, tiles, out=prod)  # (16, F, C) @ (16, C, k*T)
        winograd_untile(prod, half, y[i:i + k])


def winograd_backward(x, dy, u, pad, chunk, work, du, du_sum, dx):
    """The gradients of winograd_forward: du_sum (16, F, C) of the transformed filters, and dx
    (N, C, H, W) unless None. Each chunk's tiles are transformed again (cheaper than keeping
    every sample's out of cache); du (16, F, C) is scratch."""
    n, c, h, w = x.shape
    f, oh, ow = dy.shape[1:]
    du_sum[...] = 0
    for i in range(0, n, chunk):
        k = min(chunk, n - i)
        xp, rows, tiles, prod, half = _winograd_views(work, k, c, f, h, w, oh, ow, pad)
        winograd_tiles(x[i:i + k], pad, xp, rows, tiles)
        winograd_untile_grad(dy[i:i + k], half, prod)  # prod holds the products' gradient
        np.matmul(prod, tiles.transpose(0, 2, 1), out=du)  # (16, F, k*T) @ (16, k*T, C)
        du_sum += du
        if dx is not None:
            np.matmul(u.transpose(0, 2, 1), prod, out=tiles)  # (16, C, F) @ (16, F, k*T)
            winograd_tiles_grad(tiles, pad, rows, xp, dx[i:i + k])


def winograd_work_sizes(chunk, c, f, h, w, oh, ow, pad):
    """Element counts of the flat buffers winograd_forward and winograd_backward use."""
    t = (oh // 2) * (ow // 2)
    return {"xp": chunk * c * (h + 2 * pad) * (w + 2 * pad) if pad else 1,
            "rows": 4 * c * chunk * (oh // 2) * (w + 2 * pad),
            "tiles": 16 * c * chunk * t, "prod": 16 * f * chunk * t, "half": 8 * f * chunk * t}


def _winograd_views(work, k, c, f, h, w, oh, ow, pad):
    """(xp, rows, tiles, prod, half) for a chunk of k samples: contiguous views at the start of
    the flat buffers in `work`."""
    th, tw = oh // 2, ow // 2
    hp, wp = h + 2 * pad, w + 2 * pad
    xp, rows, tiles, prod, half = work
    return (xp[:k * c * hp * wp].reshape(k, c, hp, wp) if pad else None,
            rows[:4 * c * k * th * wp].reshape(4, c, k, th, wp),
            tiles[:16 * c * k * th * tw].reshape(16, c, k * th * tw),
            prod[:16 * f * k * th * tw].reshape(16, f, k * th * tw),
            half[:8 * f * k * th * tw].reshape(2, 4, f, k * th * tw))
