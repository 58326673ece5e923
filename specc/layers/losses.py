"""Loss layers, always last: SoftmaxWithLoss (cross-entropy) and MeanSquaredError."""
from __future__ import annotations

from specc.layers.base import Layer, Shape, ShapeError, fmt_shape, registered


class _Loss(Layer):
    is_loss = True

    def infer_shape(self) -> Shape:
        if len(self.in_shape) != 1:
            raise ShapeError(
                f"{self.name} expects one score per class, (N, classes), but receives "
                f"{fmt_shape(self.in_shape)}",
                hint="put an Affine layer (or Flatten) before the loss", wants="expects (N, classes)")
        return self.in_shape


@registered
class SoftmaxWithLoss(_Loss):
    name = "SoftmaxWithLoss"
    doc = "Softmax over the classes, then cross-entropy with the labels."
    flops_per_element = 5  # max, subtract, exp, sum, divide


@registered
class MeanSquaredError(_Loss):
    name = "MeanSquaredError"
    aliases = ("MSE",)
    doc = "Identity output with the loss 0.5 * sum((y - t)^2), averaged over the batch."
    flops_per_element = 3  # subtract, square, sum
