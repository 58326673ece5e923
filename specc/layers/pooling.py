"""Pooling: the maximum over size x size windows of each channel."""
from __future__ import annotations

import numpy as np

from specc.layers.base import NONNEGATIVE_INT, POSITIVE_INT, Arg, Layer, Shape, expect_image, registered, sliding_output
from specc.numerics import pool_backward, pool_windows


def _stride_default(args) -> int:
    size = args.get("size")
    return size if isinstance(size, int) and not isinstance(size, bool) else 2


@registered
class Pooling(Layer):
    name = "Pooling"
    aliases = ("MaxPooling", "MaxPool")
    foreign_names = dict.fromkeys(("MaxPool2d", "MaxPooling2D", "Pool2d"),
                                  "specc's max pooling is Pooling (or MaxPool), as in `Pooling(2, stride=2)`")
    doc = "Max pooling over size x size windows (per channel); the gradient goes to the first maximum."
    signature = (
        Arg("size", POSITIVE_INT, "a positive integer (the window's height and width)", default=2,
            doc="window height and width"),
        Arg("stride", POSITIVE_INT, "a positive integer", default=_stride_default,
            doc="step between windows; defaults to the window size"),
        Arg("pad", NONNEGATIVE_INT, "a non-negative integer", default=0, doc="padding on each side"),
    )

    def infer_shape(self) -> Shape:
        c, h, w = expect_image(self.name, self.in_shape)
        k, s, p = self.args["size"], self.args["stride"], self.args["pad"]
        return (c, sliding_output(self.name, "H", h, k, s, p, "size"),
                sliding_output(self.name, "W", w, k, s, p, "size"))

    def flops(self) -> int:
        c, oh, ow = self.out_shape
        return c * oh * ow * self.args["size"] ** 2  # one compare per window element

    def describe(self) -> str:
        extra = "".join(f", {k}={self.args[k]}" for k, d in (("stride", self.args["size"]), ("pad", 0))
                        if self.args[k] != d)
        return f"Pooling({self.args['size']}{extra})"

    def forward(self, p, x, train, rt):
        k, s, pad = self.args["size"], self.args["stride"], self.args["pad"]
        windows = pool_windows(x, k, s, pad)  # (N, C, OH, OW, k*k)
        argmax = windows.argmax(axis=-1)
        y = np.take_along_axis(windows, argmax[..., None], axis=-1)[..., 0]
        return y, lambda dy: (pool_backward(dy, argmax, x.shape, k, s, pad), {})

    def emit(self, e) -> None:
        k, s, pad = self.args["size"], self.args["stride"], self.args["pad"]
        c, h, w = self.in_shape
        _, oh, ow = self.out_shape
        y = e.output()
        if not (pad == 0 and s == k and h % k == 0 and w % k == 0):
            argmax = e.buffer("argmax", ("N", *self.out_shape), "index")
            e.fwd(f"windows = {e.helper(pool_windows)}({e.x}, {k}, {s}, {pad})",
                  f"np.argmax(windows, axis=-1, out={argmax})",
                  f"np.max(windows, axis=-1, out={y})")
            if e.dx:
                dx = e.grad_input()
                e.bwd(f"np.copyto({dx}, {e.helper(pool_backward)}({e.dy}, {argmax}, {dx}.shape, {k}, {s}, {pad}))")
            return
        # Windows that tile the image: k*k strided views, one per window position, and
        # element-wise maxima over them; no copy of the windows, no argmax over a short axis.
        grid = f"{e.x}_tiles"
        e.view(grid, f"{e.x}.reshape(N, {c}, {oh}, {k}, {ow}, {k})")
        views = [f"{grid}[:, :, :, {i}, :, {j}]" for i in range(k) for j in range(k)]
        if len(views) == 1:
            e.fwd(f"np.copyto({y}, {views[0]})")
        else:
            e.fwd(f"np.maximum({views[0]}, {views[1]}, out={y})",
                  *(f"np.maximum({y}, {v}, out={y})" for v in views[2:]))
        if e.dx:
            dx = e.grad_input()
            hit, taken = e.buffer("hit", ("N", c, oh, ow), "bool"), e.buffer("taken", ("N", c, oh, ow), "bool")
            target = f"{dx}.reshape(N, {c}, {oh}, {k}, {ow}, {k})"
            for n, v in enumerate(views):
                i, j = divmod(n, k)
                e.bwd(f"np.equal({v}, {y}, out={hit})")
                if n:  # the gradient goes to the first maximum of each window, as the reference does
                    e.bwd(f"np.greater({hit}, {taken}, out={hit})")
                e.bwd(f"np.multiply({e.dy}, {hit}, out={target}[:, :, :, {i}, :, {j}])")
                if n == 0:
                    e.bwd(f"np.copyto({taken}, {hit})")
                elif n < len(views) - 1:
                    e.bwd(f"np.logical_or({taken}, {hit}, out={taken})")
