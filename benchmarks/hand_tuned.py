"""The hand-tuned NumPy training step of ../shared/bench/numpy_fast_mlp.py, written again for any chain
Affine -> ReLU -> ... -> Affine -> SoftmaxWithLoss with flat inputs, so that benchmarks/bench.py
times it beside specc in one process.

Its tricks: biases folded into the weights as an extra row, the inputs of every Affine carrying a
column of ones; the last layer's weights kept transposed so that the scores come out (classes, N)
and the softmax reduces along axis 0; lr / N folded into the loss gradient, so that every matrix
product yields an already scaled gradient and SGD is one subtraction a layer; the ReLU mask from
the ReLU's output; no input gradient for the first layer. The loss is not computed per step: the
script records p[label] and takes the logs after its loop, and so does this step (the record only).
"""
from __future__ import annotations

import numpy as np


def chain(net) -> list[int] | None:
    """The layer widths [in, hidden..., classes] when `net` is such a chain, else None."""
    kinds = [c.spec.type for c in net.checked.layers]
    if len(net.input_shape) != 1 or kinds[-1] != "SoftmaxWithLoss" or len(kinds) % 2:
        return None
    body = kinds[:-1]
    if body[::2] != ["Affine"] * len(body[::2]) or body[1::2] != ["ReLU"] * len(body[1::2]):
        return None
    return [net.input_shape[0]] + [c.out_shape[0] for c in net.checked.layers[:-1:2]]


class HandTuned:
    """The step, with its own copy of the network's starting parameters."""

    def __init__(self, net, widths: list[int], n: int, lr: float):
        dtype = net.dtype
        self.scale = dtype.type(lr / n)
        params = list(net.params.values())  # W1, b1, W2, b2, ... in layer order
        # [W; b] per layer, (in + 1, out); the last one transposed, (classes, in + 1)
        self.w = [np.concatenate([w, b[None, :]]).astype(dtype) for w, b in zip(params[::2], params[1::2])]
        self.w[-1] = np.ascontiguousarray(self.w[-1].T)
        self.g = [np.empty_like(w) for w in self.w]
        # the input of each Affine with its ones column; a hidden layer writes into the first columns
        self.ins = [np.ones((n, k + 1), dtype) for k in widths[:-1]]
        self.hidden = [a[:, :-1] for a in self.ins[1:]]
        self.dh = [np.empty((n, k), dtype) for k in widths[1:-1]]
        self.mask = [np.empty((n, k), np.bool_) for k in widths[1:-1]]
        self.z_t = np.empty((widths[-1], n), dtype)
        self.top = np.empty(n, dtype)
        self.rows = np.arange(n)
        self.x_id = None
        self.picked: np.ndarray | None = None

    def step(self, x: np.ndarray, t: np.ndarray) -> None:
        if id(x) != self.x_id:  # the script folds the ones column into its whole data set once
            self.ins[0][:, :-1] = x
            self.x_id = id(x)
        w, g, ins = self.w, self.g, self.ins
        for k, h in enumerate(self.hidden):
            np.matmul(ins[k], w[k], out=h)
            np.maximum(h, 0, out=h)
        z = self.z_t
        np.matmul(w[-1], ins[-1].T, out=z)  # (classes, in + 1) @ (in + 1, N) -> (classes, N)
        np.max(z, axis=0, out=self.top)
        z -= self.top
        np.exp(z, out=z)
        np.sum(z, axis=0, out=self.top)
        z /= self.top
        self.picked = z[t, self.rows]  # p[label], from which the script takes its losses after the loop
        z[t, self.rows] -= 1.0  # softmax - onehot, then times lr / N
        z *= self.scale
        np.matmul(z, ins[-1], out=g[-1])
        dz = z.T
        for k in reversed(range(len(self.hidden))):
            dh, out = self.dh[k], w[k + 1]
            np.matmul(dz, (out[:, :-1] if k + 1 == len(w) - 1 else out[:-1].T), out=dh)
            np.greater(self.hidden[k], 0, out=self.mask[k])
            dh *= self.mask[k]
            np.matmul(ins[k].T, dh, out=g[k])
            dz = dh
        for wk, gk in zip(w, g):
            wk -= gk
