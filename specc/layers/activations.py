"""Element-wise activations: ReLU, Sigmoid, Tanh (shape in = shape out, no parameters)."""
from __future__ import annotations

from specc.layers.base import Layer, registered


@registered
class ReLU(Layer):
    name = "ReLU"
    aliases = ("Relu",)
    doc = "max(0, x), element-wise."
    flops_per_element = 1  # one compare


@registered
class Sigmoid(Layer):
    name = "Sigmoid"
    doc = "1 / (1 + exp(-x)), element-wise."
    flops_per_element = 4  # negate, exp, add, divide


@registered
class Tanh(Layer):
    name = "Tanh"
    doc = "tanh(x), element-wise."
    flops_per_element = 4  # counted as for Sigmoid: tanh(x) = 2 sigmoid(2x) - 1
