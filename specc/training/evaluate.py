"""Evaluation of a network on a whole data set (loss, accuracy, predictions), and the check that a
data set fits a network before anything is trained."""
from __future__ import annotations

from dataclasses import dataclass

try:
    import fcntl
except ImportError:  # Windows: RunLock falls back to an exclusively created file
    fcntl = None  # type: ignore[assignment]

import numpy as np

from specc import blame
from specc.errors import DataError, Diagnostic
from specc.layers.base import Labels, size
from specc.network import Network
from specc.text import batch_shape, shape_text
from specc.training.data import Batches, Dataset
from specc.training.world import ALONE, World

_FLOAT16_HINT = ("float16 holds values up to 65504 only; an activation above that overflows to infinity: "
                 "evaluate in float32 (--dtype float32)")


@dataclass(frozen=True)
class Evaluation:
    loss: float
    accuracy: float
    predicted: np.ndarray  # class per sample
    labels: np.ndarray  # the true class per sample

    def confusion(self, classes: int) -> np.ndarray:
        """(classes, classes) counts: row = true class, column = predicted class."""
        matrix = np.zeros((classes, classes), np.int64)
        np.add.at(matrix, (self.labels, self.predicted), 1)
        return matrix


@np.errstate(over="ignore", invalid="ignore")  # an overflow is reported as a RunError naming the layer
def evaluate(net: Network, batches: Batches, labels: np.ndarray, chunk: int | None = None,
             finite: bool = False) -> Evaluation:
    """Inference-mode loss and accuracy over a whole data set, in fixed-size chunks. With `finite`
    (eval, inspect), scores that are NaN or infinite raise a RunError naming the first layer that
    made them; training's own evaluations leave divergence to its step checks."""
    loss_layer = net.loss_layer.layer
    total = 0.0
    predicted = np.empty(len(labels), np.intp)
    for start, x in batches.chunks(chunk or net.eval_chunk):
        t = labels[start:start + len(x)]
        scores = net.forward(x, False)
        if finite and not np.isfinite(scores).all():  # (float16 overflows above 65504): named, never a silent argmax
            blame.forward(net, x, False, _FLOAT16_HINT if net.dtype == np.float16 else None)
        target = t if net.plan.labels is Labels.CLASSES else np.eye(scores.shape[1], dtype=scores.dtype)[t]
        total += loss_layer.loss(scores, target)[0] * len(x)
        predicted[start:start + len(x)] = scores.argmax(axis=1)
    return Evaluation(total / len(labels), float((predicted == labels).mean()), predicted, labels)


def score(net: Network, batches: Batches, labels: np.ndarray, world: World = ALONE) -> tuple[float, float]:
    """(mean loss, accuracy) in inference mode over a whole data set, as evaluate gives them. Under MPI
    each rank scores its contiguous share of the samples, and one Allreduce of the loss sum and the
    count of correct predictions gives every rank the whole set's figures."""
    start, stop = world.bounds(len(labels))
    loss_layer = net.loss_layer.layer
    sums = np.zeros(2)  # the loss summed over the samples, the correct predictions
    for at, x in batches.chunks(net.eval_chunk, start, stop):
        t = labels[at:at + len(x)]
        scores = net.forward(x, False)
        target = t if net.plan.labels is Labels.CLASSES else np.eye(scores.shape[1], dtype=scores.dtype)[t]
        sums[0] += loss_layer.loss(scores, target)[0] * len(x)
        sums[1] += int((scores.argmax(axis=1) == t).sum())
    world.sum(sums)
    return float(sums[0] / len(labels)), float(sums[1] / len(labels))


def check_fit(net: Network, data: Dataset) -> None:
    """Refuse, before training, data whose samples or classes do not fit the network."""
    want, got = net.input_shape, data.sample_shape
    if size(want) != size(got):
        raise DataError([Diagnostic(
            f"the data's samples are {shape_text(got)} ({size(got):,} values), but the network's input "
            f"is {batch_shape(want)} ({size(want):,} values)", net.checked.network.input_span
            or net.checked.layers[0].spec.span, "data-shape", "expects this input",
            f"{data.name} ({data.origin}) does not fit this network; change the input or the data")], net.source)
    outputs = net.loss_layer.out_shape[0]
    if net.plan.labels is Labels.CLASSES and data.classes > outputs:
        raise DataError([Diagnostic(
            f"the data's labels go up to {data.classes - 1}, but the network outputs {outputs} scores "
            f"(classes 0 to {outputs - 1})",
            net.loss_layer.spec.span, "data-classes", f"{outputs} classes",
            "the last Affine layer's size is the number of classes")], net.source)
