"""Affine: the fully connected layer y = x W + b; an image input is flattened first, as in the book."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from specc.layers.args import INIT, INIT_EXPECTS, POSITIVE_INT, Arg
from specc.layers.base import Forward, Layer, Params, Runtime, Shape, ShapeError, size
from specc.layers.registry import registered
from specc.text import batch_shape

if TYPE_CHECKING:
    from specc.emission import Emit


# The products with a transposed operand (x.T @ dy, dy @ W.T) go through np.matmul from this many
# weights on: measured with NumPy 2.4's OpenBLAS on one thread, it is 2-22% faster there than np.dot
# (x.T @ dy at (100, 784) x (100, 50): 65 us against 68), which calls only 0.3 us sooner and so
# stays below (50 x 10: 1.8 us against 2.2).
_MATMUL_FROM = 20_000


@registered
class Affine(Layer):
    name = "Affine"
    output_scales = ("W", "b")
    aliases = ("Linear",)
    foreign_names = dict.fromkeys(("Dense", "FullyConnected", "FC", "InnerProduct"),
                                  "specc's fully connected layer is Affine (or Linear)")
    doc = "Fully connected layer: y = x W + b (W: in x out)."
    signature = (
        Arg("in", POSITIVE_INT, "a positive integer (the number of inputs)", default=None, nullable=True,
            doc="inputs per sample; inferred from the previous layer when omitted"),
        Arg("out", POSITIVE_INT, "a positive integer (the number of outputs)", doc="outputs per sample"),
        Arg("init", INIT, INIT_EXPECTS, default="auto",
            doc="weight init: 'he', 'xavier', a standard deviation, or 'auto' (by the network's activations)"),
    )
    positional = {1: ("out",), 2: ("in", "out"), 3: ("in", "out", "init")}
    param_names = ("W", "b")
    decays = ("W",)
    fusion_head = True

    def infer_shape(self) -> Shape:
        n = size(self.in_shape)
        declared = self.args.get("in")
        if declared is not None and declared != n:
            got = f"{n}" if len(self.in_shape) == 1 else f"{' x '.join(map(str, self.in_shape))} = {n}"
            raise ShapeError(
                f"Affine expects {declared} inputs per sample, but receives {got}",
                hint=f"write `Affine({self.args['out']})` to let specc infer the input size",
                arg="in", wants=f"expects {batch_shape((declared,))}")
        return (self.args["out"],)

    def param_shapes(self) -> dict[str, Shape]:
        return {"W": (size(self.in_shape), self.args["out"]), "b": (self.args["out"],)}

    def fan_in(self) -> int:
        return size(self.in_shape)

    def param_init(self, default_init: str) -> dict[str, tuple]:
        return {"W": ("normal", self.weight_std(default_init)), "b": ("zeros",)}

    def flops(self) -> int:
        return 2 * size(self.in_shape) * self.args["out"]  # (1, in) @ (in, out), bias in the last add

    @classmethod
    def implied_input(cls, args) -> Shape | None:
        return (args["in"],) if args.get("in") is not None else None

    def describe(self) -> str:
        init = self.args.get("init", "auto")
        extra = "" if init == "auto" else f", init={init}"
        return f"Affine({size(self.in_shape)}, {self.args['out']}{extra})"

    def forward(self, p: Params, x: np.ndarray, train: bool, rt: Runtime) -> Forward:
        x2 = x.reshape(x.shape[0], -1)
        y = x2 @ p["W"] + p["b"]  # (N, in) @ (in, out) -> (N, out)

        def backprop(dy):
            grads = {"W": x2.T @ dy, "b": dy.sum(axis=0)}
            return (dy @ p["W"].T).reshape(x.shape), grads

        return y, backprop

    def emit(self, e: Emit) -> None:
        x2 = e.x
        if len(e.in_shape) > 1:
            x2 = f"{e.x}_flat"
            e.view(x2, f"{e.x}.reshape(N, -1)")
        y = e.output()
        e.fwd(f"np.dot({x2}, {e.param('W')}, out={y})",
              f"{y} += {e.param('b')}")
        product = "np.matmul" if size(e.in_shape) * e.out_shape[0] >= _MATMUL_FROM else "np.dot"
        e.bwd(f"{product}({x2}.T, {e.dy}, out={e.grad('W')})",
              f"np.dot({e.ones()}, {e.dy}, out={e.grad('b')})")  # the sum over the batch, (N,) @ (N, out)
        if e.dx:
            dx = e.grad_input()
            target = dx if len(e.in_shape) == 1 else f"{dx}.reshape(N, -1)"
            e.bwd(f"{product}({e.dy}, {e.param('W')}.T, out={target})")
