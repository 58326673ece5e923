"""Looking inside a network (`specc inspect`): activation histograms, first-layer filters and
misclassified samples, each a PNG and the numbers behind it; and evaluation in several dtypes
(`specc eval --dtype float16`)."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from specc import inspection
from specc.api.experiments import with_init
from specc.api.front import check_source, load_source, read
from specc.api.runs import trained
from specc.errors import Diagnostic, UsageError
from specc.network import Network
from specc.training import data as data_mod
from specc.training import figures, ranges
from specc.training.evaluate import Evaluation, check_fit, evaluate

VIEWS = ("activations", "filters", "misclassified")
RANDOM_INPUTS = 1000  # the book's np.random.randn(1000, 100)
MISCLASSIFIED = 20  # the book's max_view


@dataclass(frozen=True)
class ActivationReport:
    rows: tuple[tuple[str, tuple[inspection.Activations, ...]], ...]  # (weights' caption, its layers)
    inputs: str  # what the network was fed
    png: Path | None  # None without matplotlib


@dataclass(frozen=True)
class FilterReport:
    panels: tuple[tuple[str, inspection.Filters], ...]  # ("before training", ...), ("after training", ...)
    png: Path | None


@dataclass(frozen=True)
class MisclassifiedReport:
    found: inspection.Misclassified
    data: str  # the data set and split
    png: Path | None


def default_png(spec: str | Path, view: str) -> Path:
    """models/simple_conv_net.net, filters -> simple_conv_net-filters.png in the current folder."""
    return Path(f"{Path(spec).stem}-{view}.png")


def activation_histograms(spec: str | Path, *, init: str | None = None, weights: str | Path | None = None,
                          random: int | None = None, data: str | None = None, count: int | None = None,
                          seed: int = 0, out: str | Path | None = None) -> ActivationReport:
    """Every activation layer's outputs, as the book's weight_init_activation_histogram.py draws them:
    at the seeded initial weights (each of `init`'s, e.g. "std=1,0.01,xavier,he", one row each; the
    spec's own when None) or at trained `weights`; on `random` standard-normal inputs (default 1000,
    as the book) or on the first `count` test samples of `data` (default 1000)."""
    source = read(spec)
    checked = check_source(source)
    if init is not None and weights is not None:
        raise UsageError([Diagnostic("--init sets initial weights and --weights loads trained ones: give one",
                                     None, "conflicting-flags")])
    if random is not None and (data is not None or count is not None):
        raise UsageError([Diagnostic("--random feeds random inputs and --data (with --count) samples of a data "
                                     "set: give one", None, "conflicting-flags")])
    if not any(c.layer.activation for c in checked.layers):
        raise UsageError([Diagnostic(f"{source.name} has no activation layer (ReLU, Sigmoid, Tanh, ...) to look at",
                                     None, "no-activation",
                                     hint="the histograms are of the outputs of activation layers")])
    if data is None:
        n = random or RANDOM_INPUTS
        x = np.random.default_rng([seed, 2]).standard_normal((n, *checked.input_shape))
        inputs = f"{n:,} standard-normal inputs (seed {seed})"
    else:
        dataset = data_mod.load(data)
        n = min(count or RANDOM_INPUTS, len(dataset.x_test))
        x = dataset.x_test[:n].astype(np.float64) * dataset.scale()
        inputs = f"the first {n:,} test samples of {dataset.name}"
    nets: list[tuple[str, Network]] = []
    if weights is not None:
        net = trained(spec, weights, "float64")
        nets.append((f"weights of {Path(weights).name}", net))
    elif init is not None:
        for value in ranges.listed("init", init, ranges.init_value):
            variant = with_init(source, value)
            nets.append((f"init {_init_caption(value)}", load_source(variant, dtype="float64", seed=seed)))
    else:
        nets.append(("the spec's init", load_source(source, dtype="float64", seed=seed)))
    if data is not None:
        check_fit(nets[0][1], dataset)
    x = x.reshape(len(x), *checked.input_shape)
    rows = tuple((caption, tuple(inspection.activations(net, x))) for caption, net in nets)
    png = Path(out) if out is not None else default_png(spec, "activations")
    drawn = _draw(png, lambda: figures.histograms(rows, png, f"{Path(source.name).name}: activations of {inputs}"))
    return ActivationReport(rows, inputs, png if drawn else None)


def _init_caption(value: str | float) -> str:
    return f"std={value:g}" if isinstance(value, float) else str(value)


def filter_images(spec: str | Path, *, weights: str | Path | None = None, seed: int = 0,
                  out: str | Path | None = None) -> FilterReport:
    """The first Convolution's filters, as the book's visualize_filter.py shows them: the seeded initial
    weights, and beside them the trained `weights` when given."""
    source = read(spec)
    checked = check_source(source)
    c = inspection.first_convolution(checked)
    if c is None:
        raise UsageError([Diagnostic(f"{source.name} has no Convolution layer, so no filters to show", None,
                                     "no-convolution", hint="`specc inspect filters` shows the first Convolution's "
                                     "filters (e.g. of models/simple_conv_net.net); `specc inspect activations` "
                                     "works on any network")])
    initial = load_source(source, dtype="float64", seed=seed)
    panels = [(f"before training (seed {seed})", inspection.filters(initial, c))]
    if weights is not None:
        after = trained(spec, weights, "float64")
        panels.append((f"after training ({Path(weights).name})", inspection.filters(after, c)))
    png = Path(out) if out is not None else default_png(spec, "filters")
    f, ch, k, _ = panels[0][1].weights.shape
    title = (f"{Path(source.name).name}: {c.layer.describe()}, {f} filters {k}x{k}"
             + (f" (channel 1 of {ch})" if ch > 1 else ""))
    drawn = _draw(png, lambda: figures.filter_grids([(caption, fs.weights) for caption, fs in panels], png, title))
    return FilterReport(tuple(panels), png if drawn else None)


def misclassified_images(spec: str | Path, weights: str | Path, *, data: str | None = None,
                         count: int | None = None, out: str | Path | None = None) -> MisclassifiedReport:
    """The first `count` (default 20) misclassified test samples, each with its label and the network's
    guess, as the book's misclassified_mnist.py shows them."""
    net = trained(spec, weights)
    dataset = data_mod.load(data)
    check_fit(net, dataset)
    batches = data_mod.Batches(dataset.x_test, dataset.scale(), net.dtype, net.input_shape)
    result = evaluate(net, batches, dataset.t_test, finite=True)
    found = inspection.misclassified(result, dataset.x_test, dataset.scale(), count or MISCLASSIFIED)
    png = Path(out) if out is not None else default_png(spec, "misclassified")
    captions = [f"{t} → {g}" for t, g in zip(found.labels, found.guesses)]
    title = (f"{Path(spec).name}: the first {len(found.indices)} of {found.wrong:,} misclassified test samples "
             f"of {dataset.name} (label → guess)")
    drawn = _draw(png, lambda: figures.digits(found.images, captions, png, title))
    return MisclassifiedReport(found, f"{dataset.name} ({dataset.origin}), test split", png if drawn else None)


def _draw(png: Path, draw: Callable[[], bool]) -> bool:
    try:
        return draw()
    except OSError as e:
        raise UsageError([Diagnostic(f"cannot write '{png}': {e.strerror or e}", None, "unwritable")]) from None


@dataclass(frozen=True)
class Precision:
    """One dtype's evaluation of the same weights on the same samples."""

    dtype: str
    evaluation: Evaluation
    seconds: float


def precisions(spec: str | Path, weights: str | Path, data: str | None = None, split: str = "test",
               dtypes: Sequence[str] = ("float16", "float32", "float64")) -> tuple[data_mod.Dataset, list[Precision]]:
    """The same weights evaluated in each dtype (weights and data cast to it, the forward pass run in it),
    as the book's half_float_network.py compares float16 with float64."""
    dataset = data_mod.load(data)
    out = []
    for dtype in dtypes:
        net = trained(spec, weights, dtype)
        check_fit(net, dataset)
        x, t = (dataset.x_test, dataset.t_test) if split == "test" else (dataset.x_train, dataset.t_train)
        start = time.perf_counter()
        result = evaluate(net, data_mod.Batches(x, dataset.scale(), net.dtype, net.input_shape), t, finite=True)
        out.append(Precision(dtype, result, time.perf_counter() - start))
    return dataset, out
