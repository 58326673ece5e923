"""Looking inside a network, as the book's figures do (ch. 6-8): the values every activation layer puts
out on a batch, the first convolution's filters, the samples a network gets wrong. Plain values, which
specc.training.figures draws and specc.cli.views tabulates."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from specc.check import CheckedLayer, CheckedNetwork
from specc.layers.conv import Convolution
from specc.network import Network
from specc.training.evaluate import Evaluation

NEAR_ZERO = 0.01  # |a| below this counts as "near 0"
SATURATION = 0.01  # within this fraction of a bounded range from either end counts as saturated


@dataclass(frozen=True)
class Activations:
    """One activation layer's outputs on a batch, with what makes "vanishing" and "saturated" readable."""

    index: int  # 1-based position in the chain, as `specc summary` numbers the layers
    name: str  # Sigmoid, ReLU, ...
    line: int | None  # of the .net file
    values: np.ndarray  # (N, *out_shape), float64
    bounds: tuple[float | None, float | None]  # the layer's declared value range (None: open)

    @property
    def mean(self) -> float:
        return float(self.values.mean())

    @property
    def std(self) -> float:
        return float(self.values.std())

    @property
    def near_zero(self) -> float:
        """The fraction of values with |a| < NEAR_ZERO."""
        return float((np.abs(self.values) < NEAR_ZERO).mean())

    @property
    def saturated(self) -> float | None:
        """The fraction of values where the layer passes (almost) no gradient back: within SATURATION of
        the range's width from an end of a bounded range (Sigmoid: below 0.01 or above 0.99), at the
        closed end of a half-open one (ReLU: exactly 0); None for a layer with no bounds."""
        low, high = self.bounds
        if low is None and high is None:
            return None
        if low is not None and high is not None:
            margin = SATURATION * (high - low)
            return float(((self.values <= low + margin) | (self.values >= high - margin)).mean())
        return float((self.values == (low if low is not None else high)).mean())


def activations(net: Network, x: np.ndarray) -> list[Activations]:
    """The output of every activation layer (a layer that declares itself one) for inputs x, through the
    reference path, one layer at a time, in inference mode."""
    found: list[Activations] = []

    def watch(c: CheckedLayer, y: np.ndarray) -> None:
        if c.layer.activation:
            span = c.spec.span
            found.append(Activations(c.index + 1, c.layer.describe(), span.line if span else None,
                                     np.array(y, np.float64), c.layer.value_range))

    with net.rewound():
        net.reference_forward(x, False, watch=watch)
    return found


def histogram_range(layers: list[Activations]) -> tuple[float, float]:
    """The x range the histograms of one network share: the declared bounds where the layers have them
    (Sigmoid 0..1, as the book draws it), the values' extremes otherwise."""
    lows, highs = {a.bounds[0] for a in layers}, {a.bounds[1] for a in layers}
    declared_low, declared_high = lows.pop() if len(lows) == 1 else None, highs.pop() if len(highs) == 1 else None
    lo = declared_low if declared_low is not None else min(float(a.values.min()) for a in layers)
    hi = declared_high if declared_high is not None else max(float(a.values.max()) for a in layers)
    return (float(lo), float(hi) if hi > lo else float(lo) + 1.0)


def first_convolution(checked: CheckedNetwork) -> CheckedLayer | None:
    return next((c for c in checked.layers if isinstance(c.layer, Convolution)), None)


@dataclass(frozen=True)
class Filters:
    """The weights of a convolution, (F, C, k, k), and how much spatial structure they hold."""

    index: int
    name: str
    line: int | None
    weights: np.ndarray

    @property
    def std(self) -> float:
        return float(self.weights.std())

    @property
    def smoothness(self) -> float:
        """The correlation of each weight with its right and lower neighbours in the same filter: about 0
        for independent random draws, clearly positive once filters have learned edges and blobs."""
        w = self.weights
        a = np.concatenate([w[..., :, :-1].ravel(), w[..., :-1, :].ravel()])
        b = np.concatenate([w[..., :, 1:].ravel(), w[..., 1:, :].ravel()])
        if a.size < 2 or a.std() == 0 or b.std() == 0:
            return 0.0
        return float(np.corrcoef(a, b)[0, 1])


def filters(net: Network, c: CheckedLayer) -> Filters:
    span = c.spec.span
    return Filters(c.index + 1, c.layer.describe(), span.line if span else None,
                   np.array(net.params[c.names["W"]], np.float64))


@dataclass(frozen=True)
class Misclassified:
    """The first samples a network gets wrong, in data set order."""

    indices: np.ndarray  # into the split
    labels: np.ndarray
    guesses: np.ndarray
    images: np.ndarray  # (n, H, W) in [0, 1], ready to draw
    total: int  # samples evaluated
    wrong: int  # of them misclassified

    @property
    def accuracy(self) -> float:
        return 1 - self.wrong / self.total if self.total else 0.0


def misclassified(result: Evaluation, x: np.ndarray, scale: float, count: int) -> Misclassified:
    """The first `count` misclassified samples of an evaluation over the samples x (as stored)."""
    wrong = np.flatnonzero(result.predicted != result.labels)
    chosen = wrong[:count]
    return Misclassified(chosen, result.labels[chosen], result.predicted[chosen],
                         as_images(x[chosen].astype(np.float64) * scale), len(result.labels), len(wrong))


def as_images(x: np.ndarray) -> np.ndarray:
    """Samples (n, ...) as 2-D gray images (n, H, W): the first channel of (C, H, W), a flat square
    sample folded (784 -> 28x28), or one row of pixels when it is neither."""
    if x.ndim == 4:
        return x[:, 0]
    if x.ndim == 3:
        return x
    flat = x.reshape(len(x), -1)
    side = int(round(flat.shape[1] ** 0.5))
    return flat.reshape(len(x), side, side) if side * side == flat.shape[1] else flat[:, None, :]
