"""The pictures of `specc inspect`, drawn as the book draws them: activation histograms per layer
(ch06/weight_init_activation_histogram.py), first-layer filters (ch07/visualize_filter.py) and
misclassified digits (ch08/misclassified_mnist.py). matplotlib is needed; without it each returns False."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from specc.inspection import Activations, histogram_range
from specc.training.plot import available, save

BINS = 30  # as the book's plt.hist(a.flatten(), 30, range=(0, 1))
FILTER_COLUMNS = 8  # the book's filter_show(nx=8)


def histograms(rows: Sequence[tuple[str, Sequence[Activations]]], path: Path, title: str) -> bool:
    """One row of histograms per network (an init, say), one panel per activation layer; the panels of a
    row share their x range (0..1 for Sigmoid) so that layers compare at a glance."""
    if not available() or not rows:
        return False
    from matplotlib.figure import Figure

    columns = max(len(layers) for _, layers in rows)
    fig = Figure(figsize=(max(2.4 * columns + 0.6, 9.0), 2.2 * len(rows) + 0.6), layout="constrained")
    axes = fig.subplots(len(rows), columns, squeeze=False)
    for r, (label, layers) in enumerate(rows):
        low, high = histogram_range(list(layers))
        for k, ax in enumerate(axes[r]):
            if k >= len(layers):
                ax.set_axis_off()
                continue
            a = layers[k]
            values = a.values.ravel()
            floor, ceiling = a.bounds
            if floor is not None and ceiling is None:  # ReLU: its zeros (half, at init) would flatten the rest
                at_floor = values == floor
                values = values[~at_floor]
                ax.text(0.97, 0.95, f"{at_floor.mean():.0%} at {floor:g},\nnot drawn", transform=ax.transAxes,
                        ha="right", va="top", fontsize="x-small", color="dimgray")
            ax.hist(values, BINS, range=(low, high), color="C0")
            ax.set_title(f"{k + 1}-layer ({a.name})" if r == 0 else f"{k + 1}-layer", fontsize="small")
            ax.tick_params(labelsize="x-small")
            if k == 0:
                ax.set_ylabel(label, fontsize="small")
            elif a.values.size == layers[0].values.size:  # the same count as the first: its scale reads for all
                ax.set_yticks([])
    fig.suptitle(title)
    save(fig, path)
    return True


def filter_grids(panels: Sequence[tuple[str, np.ndarray]], path: Path, title: str) -> bool:
    """Each (caption, weights (F, C, k, k)) as a grid of its filters' first channel, 8 to a row, side by side
    (before and after training); dark is a large weight (gray_r), each filter scaled on its own, as the book."""
    if not available() or not panels:
        return False
    from matplotlib.figure import Figure

    count = panels[0][1].shape[0]
    columns = min(FILTER_COLUMNS, count)
    rows = -(-count // columns)
    fig = Figure(figsize=(5 * len(panels) + 0.4, 0.62 * rows * 8 / columns + 1.0), layout="constrained")
    subfigures = fig.subfigures(1, len(panels), squeeze=False)[0]
    for sub, (caption, weights) in zip(subfigures, panels):
        axes = sub.subplots(rows, columns, squeeze=False)
        for i, ax in enumerate(axes.flat):
            ax.set_xticks([])
            ax.set_yticks([])
            if i < len(weights):
                ax.imshow(weights[i, 0], cmap="gray_r", interpolation="nearest")
            else:
                ax.set_axis_off()
        sub.suptitle(caption, fontsize="medium")
    fig.suptitle(title)
    save(fig, path)
    return True


def digits(images: np.ndarray, captions: Sequence[str], path: Path, title: str, columns: int = 5) -> bool:
    """Images (n, H, W) in a grid, each with its caption (label and guess), dark on light as the book."""
    if not available() or len(images) == 0:
        return False
    from matplotlib.figure import Figure

    columns = min(columns, len(images))
    rows = -(-len(images) // columns)
    fig = Figure(figsize=(1.6 * columns, 1.75 * rows + 0.5), layout="constrained")
    axes = fig.subplots(rows, columns, squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if i >= len(images):
            ax.set_axis_off()
            continue
        ax.imshow(images[i], cmap="gray_r", interpolation="nearest", vmin=0, vmax=1)
        ax.set_title(captions[i], fontsize="small")
    fig.suptitle(title)
    save(fig, path)
    return True
