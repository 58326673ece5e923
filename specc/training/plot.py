"""The learning-curve plot of a run (with matplotlib, a dependency; without it, no plot and a note why)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence


def available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def learning_curve(records: Sequence[dict[str, Any]], path: Path, title: str) -> bool:
    """Loss and accuracies per evaluation into a PNG, written atomically; False without matplotlib."""
    if not available() or not records:
        return False
    # The object API without pyplot: no GUI backend is touched, and importing is much faster.
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    epochs = [r["epoch"] for r in records]
    fig = Figure(figsize=(10, 4), layout="constrained")
    left, right = fig.subplots(1, 2)
    left.plot(epochs, [r["loss"] for r in records], marker="o", label="training loss (mean over the epoch)")
    left.plot(epochs, [r["test_loss"] for r in records], marker="s", label="test loss")
    left.set_xlabel("epoch")
    left.set_ylabel("loss")
    left.legend()
    right.plot(epochs, [r["train_acc"] for r in records], marker="o", label="train")
    right.plot(epochs, [r["test_acc"] for r in records], marker="s", label="test")
    right.set_xlabel("epoch")
    right.set_ylabel("accuracy")
    right.legend(loc="lower right")
    for axes in (left, right):
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.suptitle(title)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=100)
    os.replace(tmp, path)
    return True


def _smoothed(values: Sequence[float], window: int) -> list[float]:
    """A trailing moving average (the book smooths its loss curves too, ch06/optimizer_compare_mnist.py)."""
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def _save(fig: Any, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=100)
    os.replace(tmp, path)


def comparison(curves: Sequence[tuple[str, Sequence[float], Sequence[dict[str, Any]]]], path: Path,
               title: str) -> bool:
    """Variants overlaid: training loss per step (smoothed), train and test accuracy per epoch."""
    if not available() or not curves:
        return False
    from matplotlib.figure import Figure

    fig = Figure(figsize=(15, 4.5), layout="constrained")
    loss_ax, train_ax, test_ax = fig.subplots(1, 3)
    longest = max(len(losses) for _, losses, _ in curves)
    window = max(1, min(20, longest // 20))
    for name, losses, records in curves:
        line, = loss_ax.plot(range(1, len(losses) + 1), _smoothed(losses, window), label=name, linewidth=1.2)
        marker = "o" if len(records) <= 30 else None
        epochs = [r["epoch"] for r in records]
        train_ax.plot(epochs, [r["train_acc"] for r in records], marker=marker, markersize=3,
                      color=line.get_color(), label=name)
        test_ax.plot(epochs, [r["test_acc"] for r in records], marker=marker, markersize=3,
                     color=line.get_color(), label=name)
    loss_ax.set_xlabel("iteration")
    loss_ax.set_ylabel(f"training loss (mean of {window} steps)" if window > 1 else "training loss")
    loss_ax.set_yscale("log")
    train_ax.set_title("train accuracy")
    test_ax.set_title("test accuracy")
    for axes in (train_ax, test_ax):
        axes.set_xlabel("epoch")
        axes.set_ylim(0, 1)
    (loss_ax if len(curves) <= 8 else test_ax).legend(fontsize="small" if len(curves) <= 8 else "x-small",
                                                      ncol=1 if len(curves) <= 16 else 2)
    fig.suptitle(title)
    _save(fig, path)
    return True


def trials(curves: Sequence[tuple[str, Sequence[dict[str, Any]]]], path: Path, title: str, columns: int = 5) -> bool:
    """The best trials of a sweep, one small panel each (best first): validation accuracy solid,
    train accuracy dashed, as the book's hyperparameter_optimization.py draws them."""
    if not available() or not curves:
        return False
    from matplotlib.figure import Figure

    columns = min(columns, len(curves))
    rows = -(-len(curves) // columns)
    fig = Figure(figsize=(3 * columns, 2.4 * rows), layout="constrained")
    axes = fig.subplots(rows, columns, squeeze=False)
    for k, ax in enumerate(axes.flat):
        if k >= len(curves):
            ax.set_axis_off()
            continue
        name, records = curves[k]
        epochs = [r["epoch"] for r in records]
        ax.plot(epochs, [r["test_acc"] for r in records], label="validation")
        ax.plot(epochs, [r["train_acc"] for r in records], "--", label="train")
        ax.set_ylim(0, 1)
        ax.set_title(f"#{k + 1} {name}", fontsize="small")
        ax.tick_params(labelsize="x-small")
        if k == 0:
            ax.legend(fontsize="x-small", loc="lower right")
    fig.suptitle(title)
    _save(fig, path)
    return True
