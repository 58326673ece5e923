"""Pooling over size x size windows of each channel: the maximum (Pooling) or the mean (AvgPooling)."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from specc.convpool import avg_pool_backward, pool_backward, pool_windows, tiled_max_pool, tiled_max_pool_backward
from specc.layers.args import NONNEGATIVE_INT, POSITIVE_INT, Arg
from specc.layers.base import Forward, Layer, Params, Runtime, Scratch, Shape, ShapeError, size
from specc.layers.registry import registered
from specc.layers.windows import expect_image, padding_only, sliding_output

# Tiled max pooling runs a few samples at a time: the k*k strided views of a chunk (and of its
# gradient) stay in cache from one view to the next instead of streaming the batch k*k times.
POOL_CHUNK_BYTES = 256 * 2**10  # of float32 input per chunk

if TYPE_CHECKING:
    from specc.emission import Emit


def _stride_default(args) -> int:
    size = args.get("size")
    return size if isinstance(size, int) and not isinstance(size, bool) else 2


class _Windows(Layer):
    """What max and average pooling share: the window arguments, the shape rule, the tiling test."""

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
        return f"{self.name}({self.args['size']}{extra})"

    def tiled(self) -> bool:
        """Windows that tile the image exactly (stride = size, no pad): the fast strided-view path."""
        k, s, pad = self.args["size"], self.args["stride"], self.args["pad"]
        _, h, w = self.in_shape
        return pad == 0 and s == k and h % k == 0 and w % k == 0

    def tile_views(self, x: str) -> list[str]:
        """In generated code: the k*k strided views of a tiled input, one per window position."""
        k = self.args["size"]
        return [f"{x}[:, :, :, {i}, :, {j}]" for i in range(k) for j in range(k)]

    def emit_tiles(self, e: Emit, y: str, reduce: str) -> list[str]:
        """Forward lines of a tiled input: `y` = the element-wise `reduce` (np.maximum, np.add) of its k*k
        window views; returns the views (their backward reads them too)."""
        k, c = self.args["size"], self.in_shape[0]
        _, oh, ow = self.out_shape
        grid = f"{e.x}_tiles"
        e.view(grid, f"{e.x}.reshape(N, {c}, {oh}, {k}, {ow}, {k})")
        views = self.tile_views(grid)
        if len(views) == 1:
            e.fwd(f"np.copyto({y}, {views[0]})")
        else:
            e.fwd(f"np.{reduce}({views[0]}, {views[1]}, out={y})",
                  *(f"np.{reduce}({y}, {v}, out={y})" for v in views[2:]))
        return views


@registered
class Pooling(_Windows):
    name = "Pooling"
    homogeneous = True
    aliases = ("MaxPooling", "MaxPool")
    book_name = "Pool"
    foreign_names = dict.fromkeys(("MaxPool2d", "MaxPooling2D", "Pool2d"),
                                  "specc's max pooling is Pooling (or MaxPool), as in `Pooling(2, stride=2)`")
    doc = "Max pooling over size x size windows (per channel); the gradient goes to the first maximum."

    def infer_shape(self) -> Shape:
        shape = super().infer_shape()
        k, s, pad = self.args["size"], self.args["stride"], self.args["pad"]
        (_, h, w), (_, oh, ow) = self.in_shape, shape
        rows, cols = padding_only(h, oh, k, s, pad), padding_only(w, ow, k, s, pad)
        if rows or cols:  # padded cells never win (-inf), so such a window has no maximum
            raise ShapeError(
                f"{rows:,} of Pooling's {oh:,} output rows and {cols:,} of its {ow:,} columns would pool padding "
                f"alone: pad {pad} >= size {k}, and padded cells never win, so those windows have no maximum",
                hint=f"give pad at most {k - 1} (max pooling usually takes none)", arg="pad")
        return shape

    def workspace(self, grad_input: bool) -> dict[str, Scratch]:
        if not self.tiled():
            return {"argmax": Scratch(self.out_shape, kind="index")}
        if not grad_input:
            return {}
        chunk = (self.chunk(), *self.out_shape)
        return {"hit": Scratch(chunk, batched=False, kind="bool", phase="backward"),
                "taken": Scratch(chunk, batched=False, kind="bool", phase="backward")}

    def max_tiles(self) -> int | None:
        return self.args["size"] if self.tiled() else None

    def chunk(self) -> int:
        """Samples per chunk of the tiled passes: about POOL_CHUNK_BYTES of float32 input."""
        return max(1, POOL_CHUNK_BYTES // (4 * size(self.in_shape)))

    def forward(self, p: Params, x: np.ndarray, train: bool, rt: Runtime) -> Forward:
        k, s, pad = self.args["size"], self.args["stride"], self.args["pad"]
        windows = pool_windows(x, k, s, pad)  # (N, C, OH, OW, k*k)
        argmax = windows.argmax(axis=-1)
        y = np.take_along_axis(windows, argmax[..., None], axis=-1)[..., 0]
        return y, lambda dy: (pool_backward(dy, argmax, x.shape, k, s, pad), {})

    def emit(self, e: Emit) -> None:
        k, s, pad = self.args["size"], self.args["stride"], self.args["pad"]
        y = e.output()
        if not self.tiled():
            argmax = e.buffer("argmax")
            e.fwd(f"windows = {e.helper(pool_windows)}({e.x}, {k}, {s}, {pad})",
                  f"np.argmax(windows, axis=-1, out={argmax})",
                  f"np.max(windows, axis=-1, out={y})")
            if e.dx:
                dx = e.grad_input()
                e.bwd(f"np.copyto({dx}, {e.helper(pool_backward)}({e.dy}, {argmax}, {dx}.shape, {k}, {s}, {pad}))")
            return
        # Windows that tile the image: k*k strided views, one per window position, and
        # element-wise maxima over them; no copy of the windows, no argmax over a short axis.
        chunk = self.chunk()
        e.fwd(f"{e.helper(tiled_max_pool)}({e.x}, {k}, {chunk}, {y})")
        if e.dx:
            dx = e.grad_input()
            hit, taken = e.buffer("hit"), e.buffer("taken")
            # the gradient goes to the first maximum of each window, as the reference does
            e.bwd(f"{e.helper(tiled_max_pool_backward)}({e.x}, {y}, {e.dy}, {k}, {chunk}, {hit}, {taken}, {dx})")


@registered
class AvgPooling(_Windows):
    name = "AvgPooling"
    homogeneous = True
    aliases = ("AveragePooling", "AvgPool")
    doc = ("Average pooling over size x size windows (per channel); padded cells count as zeros, so every "
           "window is divided by size*size.")

    def forward(self, p: Params, x: np.ndarray, train: bool, rt: Runtime) -> Forward:
        k, s, pad = self.args["size"], self.args["stride"], self.args["pad"]
        y = pool_windows(x, k, s, pad, fill=0.0).mean(axis=-1)  # (N, C, OH, OW)
        return y, lambda dy: (avg_pool_backward(dy, x.shape, k, s, pad), {})

    def emit(self, e: Emit) -> None:
        k, s, pad = self.args["size"], self.args["stride"], self.args["pad"]
        c, _, _ = self.in_shape
        _, oh, ow = self.out_shape
        y = e.output()
        scale = 1.0 / (k * k)
        if not self.tiled():
            e.fwd(f"np.mean({e.helper(pool_windows)}({e.x}, {k}, {s}, {pad}, 0.0), axis=-1, out={y})")
            if e.dx:
                dx = e.grad_input()
                e.bwd(f"np.copyto({dx}, {e.helper(avg_pool_backward)}({e.dy}, {dx}.shape, {k}, {s}, {pad}))")
            return
        views = self.emit_tiles(e, y, "add")
        e.fwd(f"{y} *= {scale!r}")
        if e.dx:
            dx = e.grad_input()
            target = f"{dx}.reshape(N, {c}, {oh}, {k}, {ow}, {k})"
            for n in range(len(views)):
                i, j = divmod(n, k)
                e.bwd(f"np.multiply({e.dy}, {scale!r}, out={target}[:, :, :, {i}, :, {j}])")
