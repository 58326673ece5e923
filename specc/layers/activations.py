"""Element-wise activations: ReLU, LeakyReLU, Sigmoid, Tanh (shape in = shape out, no parameters).

Each can run in place on its producer's output when fused; its backward reads only its own
output y, which is why that works.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from specc.layers.args import Arg
from specc.layers.base import Forward, Layer, Params, Runtime, Scratch
from specc.layers.registry import registered

if TYPE_CHECKING:
    from specc.emission import Emit


class Activation(Layer):
    activation = True

    def emit(self, e: Emit) -> None:
        y = e.output()
        e.fwd(*self.forward_lines(e.x, y))
        if e.dx and e.dy:
            e.bwd(*self.backward_lines(y, e.dy, e.grad_input()))

    def forward_lines(self, x: str, y: str) -> list[str]:
        """y = f(x) in generated code (another layer's code may run this activation on its own arrays)."""
        return [line.format(x=x, y=y) for line in self.forward_code]

    def backward_lines(self, y: str, dy: str, dx: str) -> list[str]:
        """dx = f'(x) * dy in generated code, from the output y."""
        return [line.format(y=y, dy=dy, dx=dx) for line in self.backward_code]

    forward_code: tuple[str, ...] = ()
    backward_code: tuple[str, ...] = ()


@registered
class ReLU(Activation):
    name = "ReLU"
    homogeneous = True
    value_range = (0.0, None)
    aliases = ("Relu",)
    book_name = "Relu"
    preferred_init = "he"
    foreign_names = dict.fromkeys(("PReLU", "ReLU6", "ELU", "GELU"),
                                  "specc has ReLU, LeakyReLU, Sigmoid and Tanh; the nearest is ReLU")
    doc = "max(0, x), element-wise."
    commutes_with_max = True
    rectifier = True
    flops_per_element = 1  # one compare
    forward_code = ("np.maximum({x}, 0, out={y})",)
    # the mask written into dx itself (1.0 where y > 0), then scaled: no boolean array per step
    backward_code = ("np.greater({y}, 0, out={dx})", "{dx} *= {dy}")

    def forward(self, p: Params, x: np.ndarray, train: bool, rt: Runtime) -> Forward:
        y = np.maximum(x, 0)
        return y, lambda dy: (dy * (y > 0), {})


@registered
class LeakyReLU(Activation):
    name = "LeakyReLU"
    homogeneous = True
    aliases = ("LeakyRelu",)
    doc = "x for x > 0, alpha * x otherwise, element-wise (computed as max(x, alpha * x), as 0 <= alpha <= 1)."
    signature = (
        Arg("alpha", {"type": "number", "minimum": 0, "maximum": 1}, "a number from 0 to 1", default=0.01,
            doc="the slope for negative inputs"),
    )
    preferred_init = "he"
    flops_per_element = 2  # scale, max

    def describe(self) -> str:
        return f"LeakyReLU({self.args['alpha']:g})"

    def workspace(self, grad_input: bool) -> dict[str, Scratch]:
        return {"scaled": Scratch(self.in_shape)}  # alpha * x, so that max() can run in place

    def forward(self, p: Params, x: np.ndarray, train: bool, rt: Runtime) -> Forward:
        alpha = self.args["alpha"]
        y = np.where(x > 0, x, alpha * x)
        # y > 0 exactly where x > 0 (alpha >= 0), so the backward reads only y, as when fused in place
        return y, lambda dy: (dy * np.where(y > 0, 1.0, alpha), {})

    def emit(self, e: Emit) -> None:
        alpha = self.args["alpha"]
        scaled, y = e.buffer("scaled"), e.output()
        e.fwd(f"np.multiply({e.x}, {alpha!r}, out={scaled})",
              f"np.maximum({e.x}, {scaled}, out={y})")
        if e.dx:
            dx = e.grad_input()
            e.bwd(f"np.greater({y}, 0, out={dx})",  # 1 where y > 0, else 0 ...
                  f"{dx} *= {1 - alpha!r}",  # ... then alpha + (1 - alpha) * [y > 0]
                  f"{dx} += {alpha!r}",
                  f"{dx} *= {e.dy}")


@registered
class Sigmoid(Activation):
    name = "Sigmoid"
    value_range = (0.0, 1.0)
    preferred_init = "xavier"
    doc = "1 / (1 + exp(-x)), element-wise (computed as (1 + tanh(x/2)) / 2, which never overflows)."
    flops_per_element = 4  # scale, tanh, add, scale
    forward_code = ("np.multiply({x}, 0.5, out={y})", "np.tanh({y}, out={y})", "{y} += 1", "{y} *= 0.5")
    backward_code = ("np.subtract(1, {y}, out={dx})", "{dx} *= {y}", "{dx} *= {dy}")

    def forward(self, p: Params, x: np.ndarray, train: bool, rt: Runtime) -> Forward:
        y = (np.tanh(x * 0.5) + 1) * 0.5
        return y, lambda dy: ((1 - y) * y * dy, {})


@registered
class Tanh(Activation):
    name = "Tanh"
    value_range = (-1.0, 1.0)
    preferred_init = "xavier"
    doc = "tanh(x), element-wise."
    flops_per_element = 4  # counted as for Sigmoid: tanh(x) = 2 sigmoid(2x) - 1
    forward_code = ("np.tanh({x}, out={y})",)
    backward_code = ("np.multiply({y}, {y}, out={dx})", "np.subtract(1, {dx}, out={dx})", "{dx} *= {dy}")

    def forward(self, p: Params, x: np.ndarray, train: bool, rt: Runtime) -> Forward:
        y = np.tanh(x)
        return y, lambda dy: ((1 - y * y) * dy, {})
