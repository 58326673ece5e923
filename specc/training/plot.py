"""The learning-curve plot of a run (with matplotlib, a dependency; without it, no plot and a note why)."""
from __future__ import annotations

import json
import os
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


def learning_curve(records: Sequence[dict[str, Any]], path: Path, title: str) -> bool:
    """Loss and accuracies per evaluation into a PNG, written atomically; False without matplotlib.
    The optimizer, learning rate and data set come from config.json beside `path`, when it is there."""
    if not available() or not records:
        return False
    # The object API without pyplot: no GUI backend is touched, and importing is much faster.
    from matplotlib.figure import Figure

    try:
        config = json.loads((path.parent / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        config = None
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
    right.legend(loc="lower right")
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
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=100)
    os.replace(tmp, path)
    return True
