"""Element-wise activations: ReLU, Sigmoid, Tanh (shape in = shape out, no parameters).

Each can run in place on its producer's output when fused; its backward reads only its own
output y, which is why that works.
"""
from __future__ import annotations

import numpy as np

from specc.layers.base import Layer, registered


class _Activation(Layer):
    activation = True

    def emit(self, e) -> None:
        y = e.output()
        e.fwd(*(line.format(x=e.x, y=y) for line in self.forward_code))
        if e.dx:
            dx = e.grad_input()
            e.bwd(*(line.format(y=y, dy=e.dy, dx=dx) for line in self.backward_code))

    forward_code: tuple[str, ...] = ()
    backward_code: tuple[str, ...] = ()


@registered
class ReLU(_Activation):
    name = "ReLU"
    aliases = ("Relu",)
    foreign_names = dict.fromkeys(("LeakyReLU", "PReLU", "ReLU6", "ELU", "GELU"),
                                  "specc has ReLU, Sigmoid and Tanh; the nearest is ReLU")
    doc = "max(0, x), element-wise."
    flops_per_element = 1  # one compare
    forward_code = ("np.maximum({x}, 0, out={y})",)
    backward_code = ("np.multiply({dy}, {y} > 0, out={dx})",)

    def forward(self, p, x, train, rt):
        y = np.maximum(x, 0)
        return y, lambda dy: (dy * (y > 0), {})


@registered
class Sigmoid(_Activation):
    name = "Sigmoid"
    doc = "1 / (1 + exp(-x)), element-wise (computed as (1 + tanh(x/2)) / 2, which never overflows)."
    flops_per_element = 4  # scale, tanh, add, scale
    forward_code = ("np.multiply({x}, 0.5, out={y})", "np.tanh({y}, out={y})", "{y} += 1", "{y} *= 0.5")
    backward_code = ("np.subtract(1, {y}, out={dx})", "{dx} *= {y}", "{dx} *= {dy}")

    def forward(self, p, x, train, rt):
        y = (np.tanh(x * 0.5) + 1) * 0.5
        return y, lambda dy: ((1 - y) * y * dy, {})


@registered
class Tanh(_Activation):
    name = "Tanh"
    doc = "tanh(x), element-wise."
    flops_per_element = 4  # counted as for Sigmoid: tanh(x) = 2 sigmoid(2x) - 1
    forward_code = ("np.tanh({x}, out={y})",)
    backward_code = ("np.multiply({y}, {y}, out={dx})", "np.subtract(1, {dx}, out={dx})", "{dx} *= {dy}")

    def forward(self, p, x, train, rt):
        y = np.tanh(x)
        return y, lambda dy: ((1 - y * y) * dy, {})
