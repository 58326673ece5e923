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
