"""A plain layer-object implementation in the style of the book's common/layers.py, written for
the benchmark: one object per layer with forward/backward, float arrays throughout, new arrays on
every call. It is what specc's fused path is measured against; specc does not use it.
"""
from __future__ import annotations

import numpy as np


def _im2col(x, k, stride, pad):
    n, c, h, w = x.shape
    oh, ow = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
    img = np.pad(x, [(0, 0), (0, 0), (pad, pad), (pad, pad)])
    col = np.zeros((n, c, k, k, oh, ow), dtype=x.dtype)
    for i in range(k):
        for j in range(k):
            col[:, :, i, j, :, :] = img[:, :, i:i + stride * oh:stride, j:j + stride * ow:stride]
    return col.transpose(0, 4, 5, 1, 2, 3).reshape(n * oh * ow, -1)


def _col2im(col, shape, k, stride, pad):
    n, c, h, w = shape
    oh, ow = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
    col = col.reshape(n, oh, ow, c, k, k).transpose(0, 3, 4, 5, 1, 2)
    img = np.zeros((n, c, h + 2 * pad + stride - 1, w + 2 * pad + stride - 1), dtype=col.dtype)
    for i in range(k):
        for j in range(k):
            img[:, :, i:i + stride * oh:stride, j:j + stride * ow:stride] += col[:, :, i, j, :, :]
    return img[:, :, pad:h + pad, pad:w + pad]


class Reference:
    """A specc layer the book has no class for (an expression layer), run through its reference
    forward and backward: new arrays on every call, as the book's layers make them."""

    def __init__(self, layer, params):
        self.layer, self.p = layer, params

    def forward(self, x):
        y, self.back = self.layer.forward(self.p, x, True, None)
        return y

    def backward(self, dout):
        dx, grads = self.back(dout)
        for k, g in grads.items():
            setattr(self, "d" + k, g)
        return dx


class Affine:
    def __init__(self, W, b):
        self.W, self.b = W, b

    def forward(self, x):
        self.shape = x.shape
        self.x = x.reshape(x.shape[0], -1)
        return self.x @ self.W + self.b

    def backward(self, dout):
        self.dW, self.db = self.x.T @ dout, dout.sum(axis=0)
        return (dout @ self.W.T).reshape(self.shape)


class Relu:
    def forward(self, x):
        self.mask = x <= 0
        out = x.copy()
        out[self.mask] = 0
        return out

    def backward(self, dout):
        dout = dout.copy()
        dout[self.mask] = 0
        return dout


class Sigmoid:
    def forward(self, x):
        self.out = 1 / (1 + np.exp(-x))
        return self.out

    def backward(self, dout):
        return dout * (1.0 - self.out) * self.out


class Tanh:
    def forward(self, x):
        self.out = np.tanh(x)
        return self.out

    def backward(self, dout):
        return dout * (1.0 - self.out ** 2)


class Dropout:
    def __init__(self, ratio):
        self.ratio = ratio

    def forward(self, x):
        self.mask = (np.random.rand(*x.shape) > self.ratio) / (1 - self.ratio)
        return x * self.mask

    def backward(self, dout):
        return dout * self.mask


class BatchNormalization:
    def __init__(self, gamma, beta):
        self.gamma, self.beta = gamma, beta

    def forward(self, x):
        self.shape = x.shape
        if x.ndim != 2:
            x = x.transpose(0, 2, 3, 1).reshape(-1, x.shape[1])
        mu = x.mean(axis=0)
        self.xc = x - mu
        self.std = np.sqrt((self.xc ** 2).mean(axis=0) + 1e-6)
        self.xn = self.xc / self.std
        out = self.gamma * self.xn + self.beta
        if len(self.shape) != 2:
            n, c, h, w = self.shape
            out = out.reshape(n, h, w, c).transpose(0, 3, 1, 2)
        return out

    def backward(self, dout):
        if dout.ndim != 2:
            dout = dout.transpose(0, 2, 3, 1).reshape(-1, dout.shape[1])
        m = dout.shape[0]
        self.dbeta, self.dgamma = dout.sum(axis=0), (self.xn * dout).sum(axis=0)
        dxn = self.gamma * dout
        dxc = dxn / self.std
        dstd = -np.sum((dxn * self.xc) / (self.std * self.std), axis=0)
        dvar = 0.5 * dstd / self.std
        dxc += (2.0 / m) * self.xc * dvar
        dx = dxc - np.sum(dxc, axis=0) / m
        if len(self.shape) != 2:
            n, c, h, w = self.shape
            dx = dx.reshape(n, h, w, c).transpose(0, 3, 1, 2)
        return dx


class Convolution:
    def __init__(self, W, b, stride, pad):
        self.W, self.b, self.stride, self.pad = W, b, stride, pad

    def forward(self, x):
        f, c, k, _ = self.W.shape
        n, _, h, w = x.shape
        oh, ow = (h + 2 * self.pad - k) // self.stride + 1, (w + 2 * self.pad - k) // self.stride + 1
        self.x, self.col = x, _im2col(x, k, self.stride, self.pad)
        self.col_W = self.W.reshape(f, -1).T
        out = self.col @ self.col_W + self.b
        return out.reshape(n, oh, ow, -1).transpose(0, 3, 1, 2)

    def backward(self, dout):
        f, c, k, _ = self.W.shape
        dout = dout.transpose(0, 2, 3, 1).reshape(-1, f)
        self.db = dout.sum(axis=0)
        self.dW = (self.col.T @ dout).transpose(1, 0).reshape(f, c, k, k)
        return _col2im(dout @ self.col_W.T, self.x.shape, k, self.stride, self.pad)


class Pooling:
    def __init__(self, size, stride, pad):
        self.k, self.stride, self.pad = size, stride, pad

    def forward(self, x):
        n, c, h, w = x.shape
        oh, ow = (h + 2 * self.pad - self.k) // self.stride + 1, (w + 2 * self.pad - self.k) // self.stride + 1
        col = _im2col(x, self.k, self.stride, self.pad).reshape(-1, self.k * self.k)
        self.x, self.arg_max = x, np.argmax(col, axis=1)
        return np.max(col, axis=1).reshape(n, oh, ow, c).transpose(0, 3, 1, 2)

    def backward(self, dout):
        dout = dout.transpose(0, 2, 3, 1)
        size = self.k * self.k
        dmax = np.zeros((dout.size, size), dtype=dout.dtype)
        dmax[np.arange(self.arg_max.size), self.arg_max.flatten()] = dout.flatten()
        dcol = dmax.reshape(dout.shape + (size,)).reshape(dout.shape[0] * dout.shape[1] * dout.shape[2], -1)
        return _col2im(dcol, self.x.shape, self.k, self.stride, self.pad)


class Flatten:
    def forward(self, x):
        self.shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dout):
        return dout.reshape(self.shape)


class SoftmaxWithLoss:
    def forward(self, x, t):
        self.t = t
        x = x - x.max(axis=1, keepdims=True)
        self.y = np.exp(x) / np.exp(x).sum(axis=1, keepdims=True)
        return -np.sum(np.log(self.y[np.arange(len(t)), t] + 1e-7)) / len(t)

    def backward(self):
        dx = self.y.copy()
        dx[np.arange(len(self.t)), self.t] -= 1
        return dx / len(self.t)


class BookNet:
    """The layers of a specc network as book-style objects, sharing specc's initial weights."""

    def __init__(self, net, dtype):
        self.params = {k: v.astype(dtype) for k, v in net.params.items()}
        self.layers = []
        for c in net.checked.layers[:-1]:
            a, p = c.layer.args, {n.rstrip("0123456789"): self.params[n] for n in c.params}
            kind = c.spec.type
            if kind == "Affine":
                layer = Affine(p["W"], p["b"])
            elif kind == "Convolution":
                layer = Convolution(p["W"], p["b"], a["stride"], a["pad"])
            elif kind == "Pooling":
                layer = Pooling(a["size"], a["stride"], a["pad"])
            elif kind == "BatchNorm":
                layer = BatchNormalization(p["gamma"], p["beta"])
            elif kind == "Dropout":
                layer = Dropout(a["ratio"])
            elif c.spec.expression is not None:  # a layer written as an expression: its reference path
                layer = Reference(c.layer, p)
            else:
                layer = {"ReLU": Relu, "Sigmoid": Sigmoid, "Tanh": Tanh, "Flatten": Flatten}[kind]()
            if isinstance(layer, Reference):
                layer.names = dict(zip(c.layer.param_shapes(), c.params))
            else:
                layer.names = dict(zip(("W", "b") if kind in ("Affine", "Convolution") else ("gamma", "beta"),
                                       c.params))
            self.layers.append(layer)
        self.last = SoftmaxWithLoss()

    def step(self, x, t, lr):
        for layer in self.layers:
            x = layer.forward(x)
        loss = self.last.forward(x, t)
        dout = self.last.backward()
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        for layer in self.layers:
            for attr, name in layer.names.items():
                self.params[name] -= lr * getattr(layer, "d" + attr)
        return loss
