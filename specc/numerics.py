"""Plain NumPy helpers shared by the reference layers and the generated code: the softmax
cross-entropy, the initial values, and what a layer sees of the rest of the batch (WholeBatch);
convolution's and pooling's are specc.convpool's and specc.convpasses', Winograd's specc.winograd's.

Every function here uses only `np` and other functions of this module, so the code
generator can copy its source verbatim into a standalone module (see specc.codegen).
"""
from __future__ import annotations

import numpy as np


def softmax_cross_entropy(scores, labels, probs_t, at=None, rows=None):
    """Mean cross-entropy of softmax(scores) with class labels; the softmax written into `probs_t`,
    transposed: (classes, N); and into `at`, an (N,) intp buffer when given, where in probs_t's
    flat layout each sample's label lies: label * N + sample (what the gradient subtracts at).
    `rows`, when given, is np.arange(N), made once.

    Transposed, every reduction over the classes runs along axis 0, N samples at a time (along a
    short last axis it costs three times as much), and the loss's gradient (probs - onehot) / N is
    laid out the same way. Uses log-sum-exp, so the loss is exact and finite without the book's
    1e-7: loss = mean(log(sum exp(s - top)) - (s[label] - top)), each term (>= 0, the sum of two
    non-negative numbers: nothing cancels) rounded in the scores' dtype and their mean taken in
    float64. In float16 the terms are float64: a score's distance from the top score can overflow
    (-60000 and 60000 are 120000 apart), where the probability it stands for is merely 0. probs_t
    must be C-contiguous and must not overlap scores. (The label's score is read through the flat
    positions: a one-dimensional index costs a third of scores[np.arange(N), labels].)
    """
    n = len(scores)
    np.copyto(probs_t, scores.T)  # (N, C) -> (C, N)
    if at is None:
        at = np.empty(n, np.intp)
    np.multiply(labels, n, out=at, dtype=np.intp)  # (in intp: uint8 labels times N would wrap around)
    at += np.arange(n) if rows is None else rows
    flat = probs_t.reshape(-1)  # (a view: probs_t is C-contiguous)
    top = probs_t.max(axis=0)  # (N,)
    half = probs_t.dtype.itemsize < 4
    if half:  # float16: a difference beyond 65504 is -inf, whose exp is the 0 it should be
        gap = np.subtract(top, flat[at], dtype=np.float64)  # top - s[label], before the shift, in float64
        with np.errstate(over="ignore"):
            probs_t -= top
    else:  # (the errstate costs as much as the subtraction)
        probs_t -= top
        gap = flat[at]  # s[label] - top, (N,), <= 0
    np.exp(probs_t, out=probs_t)
    sums = probs_t.sum(axis=0)  # (N,), each in [1, C]
    probs_t /= sums
    logs = np.log(sums, out=sums)
    if half:
        gap += logs
        return float(gap.sum() / n)
    return float(np.subtract(logs, gap, out=logs).sum(dtype=np.float64)) / n


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
