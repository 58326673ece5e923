"""What the book's interface takes: input batches and labels checked against the network and
converted to its dtype (flat or image layouts; class indices or one-hot rows), with errors at the
`.net` line that declares the input or the loss."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from specc.errors import DataError, Diagnostic
from specc.layers.base import Labels, size
from specc.text import batch_shape

if TYPE_CHECKING:
    from specc.network import Network


def samples(net: "Network", x) -> np.ndarray:
    """x as (N, *input_shape) in the network's dtype; flat and image layouts both fit."""
    x = np.asarray(x)
    want = net.input_shape
    if x.ndim >= 1 and x.shape[1:] == want:
        pass
    elif x.ndim >= 2 and size(x.shape[1:]) == size(want):
        x = x.reshape(len(x), *want)
    elif x.shape == want or (x.ndim == 1 and x.size == size(want)):
        x = x.reshape(1, *want)  # one sample without its batch axis, flat or shaped
    else:
        raise _input_error(net, x.shape)
    if x.dtype.kind not in "biuf":
        raise _data_error(net, f"the input holds {x.dtype} values, not numbers", None, at_input=True)
    return x.astype(net.dtype, copy=False)


def labels(net: "Network", t, n: int) -> np.ndarray:
    """Class indices (N,) for SoftmaxWithLoss, targets (N, k) for MeanSquaredError.

    One-hot or index labels are told apart by their number of dimensions, never by size.
    """
    t = np.asarray(t)
    if t.ndim == 0:
        t = t.reshape(1)  # the label of one sample, as input() takes one sample without its batch axis
    k = net.loss_layer.out_shape[0]
    if len(t) != n:
        raise _data_error(net, f"{n} inputs but {len(t)} labels", "give one label per input")
    if net.plan.labels is Labels.CLASSES:
        return _class_labels(net, t, k)
    if t.ndim == 1 and np.issubdtype(t.dtype, np.integer):
        t = np.eye(k, dtype=net.dtype)[t]
    if t.shape != (n, k):
        raise _data_error(net, f"targets of shape {t.shape} do not fit outputs (N, {k})", None)
    return t.astype(net.dtype, copy=False)


def _class_labels(net: "Network", t: np.ndarray, k: int) -> np.ndarray:
    if t.ndim == 2 and t.shape[1] == k:
        # argmax of anything else (soft labels, an all-zero row) would change the loss silently
        if t.size and not (((t == 0) | (t == 1)).all() and (t.sum(axis=1) == 1).all()):
            raise _data_error(net, "one-hot labels must have a single 1 in each row and 0 elsewhere",
                                   "give class indices (N,) or one-hot rows (N, classes)")
        t = t.argmax(axis=1)
    elif t.ndim != 1:
        raise _data_error(net, f"labels of shape {t.shape} fit neither class indices (N,) nor one-hot "
                               f"(N, {k})", None)
    if t.size and (not np.issubdtype(t.dtype, np.integer) and not np.all(t == np.round(t))):
        raise _data_error(net, "class labels must be whole numbers", None)
    t = t.astype(np.intp, copy=False)
    if t.size and (t.min() < 0 or t.max() >= k):
        raise _data_error(net, f"a label is {t.min() if t.min() < 0 else t.max()}, but the network has "
                               f"{k} classes (0 to {k - 1})",
                               "the last Affine layer sets the number of classes")
    return t


def nonempty(net: "Network", x: np.ndarray) -> np.ndarray:
    if len(x) == 0:
        raise _data_error(net, "the batch is empty: a loss, an accuracy or a gradient needs at least one sample",
                               "pass at least one input (and its label)", at_input=True)
    return x


def _input_error(net: "Network", got: tuple[int, ...]) -> DataError:
    span = net.checked.network.input_span or net.checked.layers[0].spec.span
    shown = "(" + ", ".join(map(str, got)) + ")"
    return DataError([Diagnostic(
        f"the input has shape {shown}, but the network expects {batch_shape(net.input_shape)}", span,
        "input-shape", f"expects {batch_shape(net.input_shape)}",
        "inputs are (N, features) or (N, channels, height, width) batches with the declared size")],
        net.source)


def _data_error(net: "Network", message: str, hint: str | None, at_input: bool = False) -> DataError:
    span = (net.checked.network.input_span or net.checked.layers[0].spec.span) if at_input \
        else net.loss_layer.spec.span
    return DataError([Diagnostic(message, span, "labels" if not at_input else "input", "", hint)], net.source)

# --- the book's parameter files (specc.bookparams) ---------------------------------------
