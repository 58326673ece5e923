"""The learning-curve plot of a run (with matplotlib, a dependency; without it, no plot and a note why)."""
from __future__ import annotations

import json
import math
import os
import textwrap
from pathlib import Path
from typing import Any, Sequence


def available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def caption(records: Sequence[dict[str, Any]], config: dict[str, Any] | None) -> str:
    """What the curve is of: the optimizer with its learning rate, the batch and the data set, from the
    run's config.json (and the records' lr, which a schedule changes)."""
    parts = []
    settings = (config or {}).get("settings", {})
    if settings:
        args = settings.get("optimizer_args", {})
        rates = sorted({r["lr"] for r in records if "lr" in r})
        lr = f"lr {rates[0]:g}" if len(rates) == 1 else (f"lr {rates[-1]:g} to {rates[0]:g}" if rates
                                                          else f"lr {args.get('lr', '?')}")
        parts.append(f"{settings.get('optimizer', '?')}, {lr}, batch {settings.get('batch', '?')}")
    data = (config or {}).get("data")
    if data:
        parts.append(f"{data['name']} ({data['train']:,} train / {data['test']:,} test)")
    return "; ".join(parts)


def epoch_ticks(epochs: Sequence[int], most: int = 10) -> list[int]:
    """At most `most` whole-number epoch ticks, always the first and the last."""
    first, last = epochs[0], epochs[-1]
    if last - first + 1 <= most:
        return list(range(first, last + 1))
    step = -(-(last - first) // (most - 1))
    ticks = list(range(first, last, step))
    if last - ticks[-1] < step / 2 and len(ticks) > 1:
        ticks.pop()  # the last tick would crowd its neighbour
    return ticks + [last]


# The accuracy axis spans at least this much: a one-epoch run's train and test accuracy, a hair
# apart, would otherwise fill it with ticks five decimals long (0.97640 to 0.97645).
ACCURACY_SPAN = 0.01


def learning_curve(records: Sequence[dict[str, Any]], path: Path, title: str) -> bool:
    """Loss and accuracies per evaluation into a PNG, written atomically; False without matplotlib.
    The optimizer, learning rate and data set come from config.json beside `path`, when it is there."""
    if not available() or not records:
        return False
    try:
        config = json.loads((path.parent / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        config = None
    save(curve_figure(records, title, config), path)
    return True


def curve_figure(records: Sequence[dict[str, Any]], title: str, config: dict[str, Any] | None = None) -> Any:
    """The learning curve's matplotlib Figure (needs matplotlib)."""
    # The object API without pyplot: no GUI backend is touched, and importing is much faster.
    from matplotlib.figure import Figure

    epochs = [r["epoch"] for r in records]
    best = max(range(len(records)), key=lambda i: records[i]["test_acc"])
    fig = Figure(figsize=(10, 4.4), layout="constrained")
    left, right = fig.subplots(1, 2)
    left.plot(epochs, [r["loss"] for r in records], marker="o", color="C0", label="training loss (mean over the epoch)")
    if all("train_loss" in r for r in records):
        left.plot(epochs, [r["train_loss"] for r in records], marker=".", linestyle=":", color="C0",
                  label="train loss (after the epoch)")
    left.plot(epochs, [r["test_loss"] for r in records], marker="s", color="C1", label="test loss")
    left.set_ylabel("loss")
    left.legend()
    right.plot(epochs, [r["train_acc"] for r in records], marker="o", label="train")
    right.plot(epochs, [r["test_acc"] for r in records], marker="s", label="test")
    b = records[best]
    right.scatter([b["epoch"]], [b["test_acc"]], s=160, facecolors="none", edgecolors="crimson", zorder=5,
                  label=f"best test {b['test_acc']:.4f} (epoch {b['epoch']})")
    right.set_ylabel("accuracy")
    low, high = right.get_ylim()
    ceiling = 1 + ACCURACY_SPAN / 4  # no room far above a perfect score
    if high - low < ACCURACY_SPAN:
        top = min((low + high + ACCURACY_SPAN) / 2, ceiling)
        right.set_ylim(top - ACCURACY_SPAN, top)
    elif high > ceiling:
        right.set_ylim(low, ceiling)
    right.legend(loc="best")  # (rising curves leave the lower right free; one epoch may not)
    ticks = epoch_ticks(epochs)
    for axes in (left, right):
        axes.set_xticks(ticks)
        axes.set_xlabel("epoch")
        axes.axvline(b["epoch"], color="crimson", alpha=0.25, linestyle="--")
        axes.grid(alpha=0.3)
    fig.suptitle(title)
    text = caption(records, config)
    if text:
        fig.supxlabel(text, fontsize=9, color="dimgray")
    return fig


def _smoothed(values: Sequence[float], window: int) -> list[float]:
    """A trailing moving average (the book smooths its loss curves too, ch06/optimizer_compare_mnist.py)."""
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def save(fig: Any, path: Path) -> None:
    """Write a figure to a PNG atomically (a temporary file beside it, then renamed)."""
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
    starts = [losses[0] for _, losses, _ in curves if losses and math.isfinite(losses[0])]
    top = 100 * sorted(starts)[len(starts) // 2] if starts else None
    if top is not None and any(not math.isfinite(v) or v > top for _, losses, _ in curves for v in losses):
        loss_ax.set_ylim(top=top)  # a diverging variant leaves the top, not the others flat
    train_ax.set_title("train accuracy")
    test_ax.set_title("test accuracy")
    for axes in (train_ax, test_ax):
        axes.set_xlabel("epoch")
        axes.set_ylim(0, 1)
    (loss_ax if len(curves) <= 8 else test_ax).legend(fontsize="small" if len(curves) <= 8 else "x-small",
                                                      ncol=1 if len(curves) <= 16 else 2)
    fig.suptitle(title)
    save(fig, path)
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
        ax.set_title(textwrap.fill(f"#{k + 1} {name}", 36), fontsize="small" if len(name) < 34 else "x-small")
        ax.tick_params(labelsize="x-small")
        if k == 0:
            ax.legend(fontsize="x-small", loc="lower right")
    fig.suptitle(title)
    save(fig, path)
    return True


def panels(groups: Sequence[tuple[str, Sequence[tuple[str, Sequence[dict[str, Any]]]]]], path: Path, title: str,
           key: str = "train_acc", columns: int = 4) -> bool:
    """Small multiples: one panel per group (a value of the varied setting), in each one line per member
    (a spec), the same member in the same colour and style in every panel, as the book's
    batch_norm_test.py draws its 4x4 grid of weight scales (BatchNorm solid, without it dashed)."""
    if not available() or not groups:
        return False
    from matplotlib.figure import Figure

    columns = min(columns, len(groups))
    rows = -(-len(groups) // columns)
    fig = Figure(figsize=(3.2 * columns, 2.5 * rows + 0.6), layout="constrained")
    axes = fig.subplots(rows, columns, squeeze=False, sharex=True, sharey=True)
    styles = ["-", "--", ":", "-."]
    members = list(dict.fromkeys(name for _, lines in groups for name, _ in lines))
    for k, ax in enumerate(axes.flat):
        if k >= len(groups):
            ax.set_axis_off()
            continue
        label, lines = groups[k]
        unfinished = [name for name, records in lines if not records]
        if unfinished:  # a variant that diverged before its first evaluation has no line to draw
            ax.text(0.5, 0.5, "\n".join(f"{name}: no epoch finished" for name in unfinished), ha="center",
                    va="center", fontsize="x-small", color="0.4", transform=ax.transAxes)
        for name, records in lines:
            m = members.index(name)
            epochs = [r["epoch"] for r in records]
            ax.plot(epochs, [r[key] for r in records], styles[m % len(styles)], color=f"C{m}", label=name,
                    linewidth=1.4)
        ax.set_ylim(0, 1)
        ax.set_title(label, fontsize="small")
        ax.tick_params(labelsize="x-small")
    epochs = sorted({r["epoch"] for _, lines in groups for _, records in lines for r in records})
    for ax in axes[-1]:
        ax.set_xlabel("epoch", fontsize="small")
        if epochs:
            ax.set_xticks(epoch_ticks(epochs, most=6))
    for ax in axes[:, 0]:
        ax.set_ylabel(key.replace("_acc", " accuracy").replace("_", " "), fontsize="small")
    handles, labels = next(ax for ax in axes.flat if ax.has_data()).get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=min(4, len(labels)), fontsize="small")
    fig.suptitle(title)
    save(fig, path)
    return True
