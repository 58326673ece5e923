"""Loss layers, always last: SoftmaxWithLoss (cross-entropy) and MeanSquaredError.

A loss layer's `forward` passes the scores through (prediction stops there); `loss(x, t)`
gives the mean loss over the batch and its backprop, as the book's `SoftmaxWithLoss` does.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import numpy as np

from specc.layers.base import Forward, Labels, Layer, Params, Runtime, Scratch, Shape, ShapeError
from specc.layers.registry import registered
from specc.numerics import softmax_cross_entropy
from specc.text import batch_shape

if TYPE_CHECKING:
    from specc.emission import Emit


class _Loss(Layer):
    is_loss = True
    labels = Labels.CLASSES
    output_buffer = False  # the loss reads the scores where its producer left them

    def infer_shape(self) -> Shape:
        if len(self.in_shape) != 1:
            raise ShapeError(
                f"{self.name} expects one score per class, (N, classes), but receives "
                f"{batch_shape(self.in_shape)}",
                hint="put an Affine layer (or Flatten) before the loss", wants="expects (N, classes)")
        return self.in_shape

    def forward(self, p: Params, x: np.ndarray, train: bool, rt: Runtime) -> Forward:
        return x, lambda dy: (dy, {})


@registered
class SoftmaxWithLoss(_Loss):
    name = "SoftmaxWithLoss"
    foreign_names = {
        **dict.fromkeys(("CrossEntropyLoss", "CrossEntropy", "CategoricalCrossentropy",
                         "SparseCategoricalCrossentropy", "SoftmaxCrossEntropy", "NLLLoss"),
                        "specc's cross-entropy loss is SoftmaxWithLoss (softmax and cross-entropy in one layer)"),
        **dict.fromkeys(("Softmax", "LogSoftmax"),
                        "specc applies softmax in its loss layer: end the chain with SoftmaxWithLoss "
                        "(softmax and cross-entropy in one layer)"),
    }
    doc = "Softmax over the classes, then cross-entropy with the labels (class indices or one-hot)."
    flops_per_element = 5  # max, subtract, exp, sum, divide
    grad_buffer = False  # the input gradient is a transposed view of its own scratch (see emit)

    def workspace(self, grad_input: bool) -> dict[str, Scratch]:
        # both hold (classes, N) arrays, as the softmax helper lays them out; `at` the flat position
        # of each sample's label in them (the loss writes it, the gradient subtracts there)
        out = {"probs": Scratch(self.in_shape), "at": Scratch((), kind="index")}
        if grad_input:
            out["grad"] = Scratch(self.in_shape, phase="backward")
        return out

    def loss(self, x: np.ndarray, t: np.ndarray) -> tuple[float, Callable[[], np.ndarray]]:
        probs_t = np.empty(x.shape[::-1], x.dtype)
        value = softmax_cross_entropy(x, t, probs_t)

        def backprop():
            dx = probs_t.T.copy()
            dx[np.arange(len(t)), t] -= 1  # (y - t) / N, the fused softmax + cross-entropy gradient
            return dx / len(t)

        return value, backprop

    def emit(self, e: Emit) -> None:
        probs, at, classes = e.buffer("probs"), e.buffer("at"), e.in_shape[0]
        e.loss(f"loss = {e.helper(softmax_cross_entropy)}({e.x}, t, {probs}.reshape({classes}, N), {at}, {e.rows()})")
        if e.dx:
            dx, grad = e.dx, e.buffer("grad")
            # (y - onehot) / N, the fused softmax + cross-entropy gradient (times grad_scale), laid out
            # (classes, N) as the probabilities are; the layer before reads it through a transposed view
            scale = e.grad_scale()
            e.bwd(f"{dx}_t = {grad}.reshape({classes}, N)",
                  f"np.multiply({probs}.reshape({classes}, N), {scale} / N, out={dx}_t)",
                  f"{grad}.reshape(-1)[{at}] -= {scale} / N",  # at [label, sample] of (classes, N)
                  f"{dx} = {dx}_t.T")


@registered
class MeanSquaredError(_Loss):
    name = "MeanSquaredError"
    aliases = ("MSE",)
    foreign_names = dict.fromkeys(("MSELoss", "MeanSquaredErrorLoss", "L2Loss"),
                                  "specc's squared-error loss is MeanSquaredError (or MSE)")
    doc = "Identity output with the loss 0.5 * sum((y - t)^2), averaged over the batch."
    flops_per_element = 3  # subtract, square, sum
    labels = Labels.TARGETS

    def workspace(self, grad_input: bool) -> dict[str, Scratch]:
        return {"diff": Scratch(self.in_shape)}

    def loss(self, x: np.ndarray, t: np.ndarray) -> tuple[float, Callable[[], np.ndarray]]:
        diff = x - t
        value = float(0.5 * np.vdot(diff, diff) / len(x))
        return value, lambda: diff / len(x)

    def emit(self, e: Emit) -> None:
        diff = e.buffer("diff")
        e.loss(f"np.subtract({e.x}, t, out={diff})",
               f"loss = float(0.5 * np.vdot({diff}, {diff}) / N)")
        if e.dx:
            dx = e.grad_input()
            e.bwd(f"np.divide({diff}, N / {e.grad_scale()}, out={dx})")  # (y - t) / N, times grad_scale
