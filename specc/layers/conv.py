"""Convolution: `filters` kernels of kernel x kernel over (C, H, W) images, with stride and zero padding."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from specc.convpasses import conv_relu_backward, conv_relu_forward, pooled_conv_backward, pooled_conv_forward
from specc.convpool import col2im, col2im_t, im2col, im2col_t
from specc.layers.activations import Activation
from specc.layers.args import INIT, INIT_EXPECTS, NONNEGATIVE_INT, POSITIVE_INT, Arg
from specc.layers.base import Forward, Layer, Params, Runtime, Scratch, Shape, size
from specc.layers.conv_winograd import WinogradConvolution
from specc.layers.registry import registered
from specc.layers.windows import expect_image, sliding_output

# The pass of a convolution, ReLU and max pooling runs a few samples at a time: a chunk's columns,
# output and output gradient (about this much each, float32) stay in the 2 MB L2 cache between its
# steps. SimpleConvNet: the whole batch at once made the pass 25% slower than chunks of 10 samples;
# chunks of 4 to 20 samples are within 2% of each other per training step.
POOLED_CHUNK_BYTES = 704 * 2**10

if TYPE_CHECKING:
    from specc.emission import Emit


@registered
class Convolution(WinogradConvolution, Layer):
    name = "Convolution"
    output_scales = ("W", "b")
    aliases = ("Conv",)
    foreign_names = dict.fromkeys(("Conv2d", "Convolution2D", "Conv2dLayer"),
                                  "specc's 2-D convolution is Convolution (or Conv), as in "
                                  "`Convolution(30, kernel=5)`")
    doc = "2-D convolution (cross-correlation, as in the book) by im2col: W is (filters, C, kernel, kernel)."
    signature = (
        Arg("filters", POSITIVE_INT, "a positive integer (the number of filters)", doc="output channels"),
        Arg("kernel", POSITIVE_INT, "a positive integer (the kernel's height and width)",
            doc="height and width of each filter"),
        Arg("stride", POSITIVE_INT, "a positive integer", default=1, doc="step between windows"),
        Arg("pad", NONNEGATIVE_INT, "a non-negative integer", default=0, doc="zeros added on each side"),
        Arg("init", INIT, INIT_EXPECTS, default="auto",
            doc="weight init: 'he', 'xavier', a standard deviation, or 'auto' (by the network's activations)"),
    )
    param_names = ("W", "b")
    decays = ("W",)
    book_name = "Conv"
    fusion_head = True

    def infer_shape(self) -> Shape:
        _, h, w = expect_image(self.name, self.in_shape)
        k, s, p = self.args["kernel"], self.args["stride"], self.args["pad"]
        oh = sliding_output(self.name, "H", h, k, s, p, "kernel")
        ow = sliding_output(self.name, "W", w, k, s, p, "kernel")
        return (self.args["filters"], oh, ow)

    def param_shapes(self) -> dict[str, Shape]:
        c = self.in_shape[0]
        k, f = self.args["kernel"], self.args["filters"]
        return {"W": (f, c, k, k), "b": (f,)}

    def fan_in(self) -> int:
        return self.in_shape[0] * self.args["kernel"] ** 2  # C * k * k inputs per output pixel

    def workspace(self, grad_input: bool) -> dict[str, Scratch]:
        if self.winograd():
            return self._winograd_workspace(grad_input)
        f, oh, ow = self.out_shape
        ckk, pixels = self.in_shape[0] * self.args["kernel"] ** 2, oh * ow
        out = {"cols": Scratch((ckk, pixels)), "gw": Scratch((f, ckk), phase="backward")}
        if self.args["pad"]:  # the padded input, so that im2col allocates nothing
            c, h, w = self.in_shape
            pad = self.args["pad"]
            out["xpad"] = Scratch((c, h + 2 * pad, w + 2 * pad))
        if grad_input:
            out["dcols"] = Scratch((ckk, pixels), phase="backward")
        return out

    def pools(self, activation: Layer, pool: Layer) -> bool:
        """A convolution, an activation that commutes with max (ReLU) and a max pooling whose windows
        tile the image: one pass, the activation on the pooled output (specc.convpasses'
        pooled_conv_forward for im2col; for Winograd winograd_pooled_forward, when the windows also
        tile the m x m output tiles)."""
        if not (isinstance(activation, Activation) and type(activation).commutes_with_max):
            return False
        size = pool.max_tiles()
        if self.winograd():  # the pass applies ReLU itself, on the maxima
            return size is not None and type(activation).rectifier and self.winograd_tile() % size == 0
        return size is not None

    def hwnc_capable(self) -> bool:
        """Winograd's passes read and write (H, W, N, C) activations as well (specc.winograd_tiles)."""
        return self.winograd()

    def absorbs(self, activation: Layer) -> bool:
        """A convolution applies ReLU itself: Winograd's as it copies its output out of the tiles,
        taking its gradient as it copies dy in (specc.winograd.winograd_forward's relu); im2col's on
        each chunk's output while it is in cache (specc.convpasses.conv_relu_forward)."""
        return type(activation).rectifier

    def emit_absorbed(self, e: Emit, activation: Emit) -> None:
        if self.winograd():
            self._emit_winograd(e, relu=activation)
        else:
            self._emit_im2col_relu(e, activation)

    def absorbed_workspace(self, activation: Layer, grad_input: bool) -> dict[str, Scratch]:
        if self.winograd():
            return self.workspace(grad_input)
        c, h, w = self.in_shape
        f, oh, ow = self.out_shape
        pad, chunk = self.args["pad"], self.pooled_chunk()
        ckk, pixels = c * self.args["kernel"] ** 2, oh * ow
        out = {"cols": Scratch((ckk + 1, pixels)), "wb": Scratch((f, ckk + 1), batched=False),
               "da": Scratch((chunk, f, pixels), batched=False, phase="backward"),
               "gw": Scratch((f, ckk + 1), phase="backward"),
               "gsum": Scratch((f, ckk + 1), batched=False, phase="backward")}
        if pad:  # the padded input of a chunk, then the gradient of it
            out["xpad"] = Scratch((chunk, c, h + 2 * pad, w + 2 * pad), batched=False)
        if grad_input:
            out["dcols"] = Scratch((chunk, ckk, pixels), batched=False, phase="backward")
        return out

    def _emit_im2col_relu(self, e: Emit, relu: Emit) -> None:
        # As the pooled pass without the pooling: the bias as a row of ones in the columns, ReLU on
        # each chunk's output while it is in cache, and its gradient likewise in the backward
        k, s, pad = self.args["kernel"], self.args["stride"], self.args["pad"]
        f, oh, ow = self.out_shape
        ckk, pixels, chunk = self.in_shape[0] * k * k, oh * ow, self.pooled_chunk()
        wb, cols, y = e.buffer("wb"), e.buffer("cols"), e.output()
        xp = e.buffer("xpad") if pad else "None"
        e.fwd(f"np.copyto({wb}[:, :{ckk}], {e.param('W')}.reshape({f}, {ckk}))",
              f"np.copyto({wb}[:, {ckk}], {e.param('b')})",
              f"{e.helper(conv_relu_forward)}({e.x}, {wb}, {k}, {s}, {pad}, {chunk}, {cols}, "
              f"{y}.reshape(N, {f}, {pixels}), {xp})")
        gsum = e.buffer("gsum")
        dcols = e.buffer("dcols") if e.dx else "None"
        dx = e.grad_input() if e.dx else "None"
        e.bwd(f"{e.helper(conv_relu_backward)}({relu.dy}.reshape(N, {f}, {pixels}), {y}.reshape(N, {f}, {pixels}), "
              f"{cols}, {wb}, {k}, {s}, {pad}, {chunk}, ({e.buffer('da')}, {e.buffer('gw')}, {dcols}, {xp}), "
              f"{gsum}, {dx})",
              f"np.copyto({e.grad('W')}.reshape({f}, {ckk}), {gsum}[:, :{ckk}])",
              f"np.copyto({e.grad('b')}, {gsum}[:, {ckk}])")

    def pooled_chunk(self) -> int:
        """Samples per chunk of the pooled pass: about POOLED_CHUNK_BYTES of float32 output."""
        return max(1, POOLED_CHUNK_BYTES // (4 * size(self.out_shape)))

    def pooled_workspace(self, activation: Layer, pool: Layer, grad_input: bool) -> dict[str, Scratch]:
        if self.winograd():
            f, oh, ow = self.out_shape
            cells = pool.args["size"] ** 2
            return {**self._winograd_workspace(grad_input),
                    "later": Scratch(((cells - 1) * f * oh * ow // cells,), kind="bool")}
        c, h, w = self.in_shape
        f, oh, ow = self.out_shape
        pad, chunk = self.args["pad"], self.pooled_chunk()
        ckk, pixels, windows = c * self.args["kernel"] ** 2, oh * ow, size(pool.out_shape[1:])
        cells = pixels // windows
        # the convolution's output lives a chunk at a time; what the backward needs of it is `later`
        out = {"cols": Scratch((cells, ckk + 1, windows)), "wb": Scratch((f, ckk + 1), batched=False),
               "out": Scratch((chunk, cells, f, windows), batched=False),
               "later": Scratch((cells - 1, f, windows), kind="bool"),
               "gpool": Scratch(pool.out_shape, phase="backward"),  # the activation's gradient, pooled
               "rest": Scratch((chunk, f, windows), batched=False, phase="backward"),
               "da": Scratch((chunk, cells, f, windows), batched=False, phase="backward"),
               "gw": Scratch((cells, f, ckk + 1), phase="backward"),
               "gsum": Scratch((f, ckk + 1), batched=False, phase="backward")}
        if pad:  # the padded input of a chunk, then the gradient of it
            out["xpad"] = Scratch((chunk, c, h + 2 * pad, w + 2 * pad), batched=False)
        if grad_input:
            out["dcols"] = Scratch((chunk, cells, ckk, windows), batched=False, phase="backward")
        return out

    def param_init(self, default_init: str) -> dict[str, tuple]:
        return {"W": ("normal", self.weight_std(default_init)), "b": ("zeros",)}

    def flops(self) -> int:
        f, oh, ow = self.out_shape
        c, k = self.in_shape[0], self.args["kernel"]
        return 2 * c * k * k * f * oh * ow  # one multiply-add per weight per output pixel

    def forward(self, p: Params, x: np.ndarray, train: bool, rt: Runtime) -> Forward:
        k, s, pad = self.args["kernel"], self.args["stride"], self.args["pad"]
        f, oh, ow = self.out_shape
        n = x.shape[0]
        col = im2col(x, k, s, pad)  # (N*OH*OW, C*k*k)
        wcol = p["W"].reshape(f, -1)  # (F, C*k*k)
        out = col @ wcol.T + p["b"]  # (N*OH*OW, F)
        y = np.ascontiguousarray(out.reshape(n, oh, ow, f).transpose(0, 3, 1, 2))

        def backprop(dy):
            dyc = dy.transpose(0, 2, 3, 1).reshape(-1, f)  # (N*OH*OW, F)
            grads = {"W": (dyc.T @ col).reshape(p["W"].shape), "b": dyc.sum(axis=0)}
            return col2im(dyc @ wcol, x.shape, k, s, pad), grads

        return y, backprop

    def emit(self, e: Emit) -> None:
        if self.winograd():
            self._emit_winograd(e)
        else:
            self._emit_im2col(e)

    def _emit_im2col(self, e: Emit) -> None:
        # One batched matmul per pass over columns laid out per sample, (N, C*k*k, OH*OW):
        # W (F, C*k*k) @ cols gives (N, F, OH*OW), the NCHW output itself, with no transpose.
        k, s, pad = self.args["kernel"], self.args["stride"], self.args["pad"]
        f, oh, ow = self.out_shape
        ckk, pixels = self.in_shape[0] * k * k, oh * ow
        w = f"{e.param('W')}.reshape({f}, {ckk})"
        cols = e.buffer("cols")
        y = e.output()
        xp = f", xp={e.buffer('xpad')}" if pad else ""
        e.fwd(f"{e.helper(im2col_t)}({e.x}, {k}, {s}, {pad}, out={cols}{xp})",
              f"np.matmul({w}, {cols}, out={y}.reshape(N, {f}, {pixels}))",
              f"{y} += {e.param('b')}.reshape(1, {f}, 1, 1)")
        dy = f"{e.dy}.reshape(N, {f}, {pixels})"
        per_sample = e.buffer("gw")
        e.bwd(f"np.matmul({dy}, {cols}.transpose(0, 2, 1), out={per_sample})",  # (N, F, C*k*k)
              f"np.sum({per_sample}, axis=0, out={e.grad('W')}.reshape({f}, {ckk}))",
              f"np.sum({dy}, axis=(0, 2), out={e.grad('b')})")
        if e.dx:
            dx = e.grad_input()
            dcols = e.buffer("dcols")
            e.bwd(f"np.matmul({w}.T, {dy}, out={dcols})",
                  f"{e.helper(col2im_t)}({dcols}, {dx}.shape, {k}, {s}, {pad}, out={dx})")

    def emit_pooled(self, e: Emit, activation: Layer, pool: Emit) -> None:
        # The columns are laid out window cell by window cell, so that the matmul (with the bias as a
        # row of ones) writes each cell's output as one block and the pooling is a maximum of
        # contiguous blocks (specc.convpasses); then the activation runs on the pooled output only (it
        # commutes with max), and its gradient is 0 wherever the maximum's cell could differ.
        if not isinstance(activation, Activation):
            raise TypeError(f"{activation.name} is not an element-wise activation")
        if self.winograd():
            self._emit_winograd(e, pool=pool)  # ReLU (Layer.pools), applied by the pass
            return
        k, s, pad = self.args["kernel"], self.args["stride"], self.args["pad"]
        f, oh, ow = self.out_shape
        tile = pool.layer.max_tiles()
        ckk, cells = self.in_shape[0] * k * k, (tile or 0) ** 2
        per = oh * ow // cells
        wb, cols, y, later = e.buffer("wb"), e.buffer("cols"), pool.output(), e.buffer("later")
        pooled = f"{y}.reshape(N, {f}, {per})"
        xp = e.buffer("xpad") if pad else "None"
        work = f"({cols}, {e.buffer('out')}, {xp})"
        e.fwd(f"np.copyto({wb}[:, :{ckk}], {e.param('W')}.reshape({f}, {ckk}))",
              f"np.copyto({wb}[:, {ckk}], {e.param('b')})",
              # the cells that beat the ones before them, for the backward pass of training
              f"{e.helper(pooled_conv_forward)}({e.x}, {wb}, {k}, {s}, {pad}, {tile}, {work}, {pooled}, "
              f"{later} if train else None)",
              *activation.forward_lines(y, y))
        if pool.dy is None:  # nothing before the pooling has parameters: no backward pass
            return
        gpool, gsum = e.buffer("gpool"), e.buffer("gsum")
        dcols = e.buffer("dcols") if e.dx else "None"
        work = f"({e.buffer('rest')}, {e.buffer('da')}, {e.buffer('gw')}, {dcols}, {xp})"
        dx = e.grad_input() if e.dx else "None"
        e.bwd(*activation.backward_lines(y, pool.dy, gpool),
              f"{e.helper(pooled_conv_backward)}({gpool}.reshape(N, {f}, {per}), {later}, {cols}, {wb}, "
              f"{k}, {s}, {pad}, {tile}, {work}, {gsum}, {dx})",
              f"np.copyto({e.grad('W')}.reshape({f}, {ckk}), {gsum}[:, :{ckk}])",
              f"np.copyto({e.grad('b')}, {gsum}[:, {ckk}])")
