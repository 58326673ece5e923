"""The learning curve drawn in the terminal at the end of a run: loss and accuracy per epoch, two
small charts side by side (curve.png is the same picture, drawn by matplotlib)."""
from __future__ import annotations

from typing import Any, Sequence

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

_HEIGHT = 7  # rows of a chart
_SERIES = {"loss": (("loss", "train", "cyan", "●"), ("test_loss", "test", "magenta", "■")),
           "accuracy": (("train_acc", "train", "cyan", "●"), ("test_acc", "test", "magenta", "■"))}


def curve_chart(records: Sequence[dict[str, Any]], width: int = 80) -> RenderableType:
    """Both charts, each (width - 4) / 2 columns wide, the best test accuracy's epoch marked."""
    best = max(range(len(records)), key=lambda i: records[i]["test_acc"])
    side = max(20, (width - 4) // 2)
    grid = Table.grid(padding=(0, 2))
    grid.add_row(*(_chart(records, what, side, best) for what in _SERIES))
    note = Text(f"by epoch; ▲ the best test accuracy, {records[best]['test_acc']:.4f} at epoch "
                f"{records[best]['epoch']}", style="dim")
    return Group(grid, note)


def _chart(records: Sequence[dict[str, Any]], what: str, width: int, best: int) -> Text:
    series = _SERIES[what]
    values = [float(r[key]) for key, *_ in series for r in records]
    finite = [v for v in values if v == v and abs(v) != float("inf")]
    low, high = (min(finite), max(finite)) if finite else (0.0, 1.0)
    if high - low < 1e-12:
        low, high = low - 0.5, high + 0.5
    label = max(len(f"{low:.3g}"), len(f"{high:.3g}"))
    plot = width - label - 1
    n = len(records)
    cells = [[(" ", "")] * plot for _ in range(_HEIGHT)]

    def column(i: int) -> int:
        return 0 if n == 1 else round(i * (plot - 1) / (n - 1))

    def row(v: float) -> int:
        return _HEIGHT - 1 - round((v - low) / (high - low) * (_HEIGHT - 1))

    for key, _, style, mark in series:
        ys = [float(r[key]) for r in records]
        for i in range(n - 1):  # dots between the epochs' marks
            a, b = column(i), column(i + 1)
            for x in range(a + 1, b):
                v = ys[i] + (ys[i + 1] - ys[i]) * (x - a) / (b - a)
                if v == v:
                    cells[row(v)][x] = ("·", style)
        for i, v in enumerate(ys):
            if v == v:
                cells[row(v)][column(i)] = (mark, style + (" bold" if i == best else ""))
    text = Text()
    legend = "  ".join(f"{mark} {name}" for _, name, _, mark in series)
    text.append(what, style="bold")
    text.append(f"  {legend}\n")
    for y in range(_HEIGHT):
        value = high - (high - low) * y / (_HEIGHT - 1)
        text.append(f"{value:.3g}".rjust(label) + "┤" if y in (0, _HEIGHT - 1) else " " * label + "│", style="dim")
        for char, style in cells[y]:
            text.append(char, style=style)
        text.append("\n")
    axis = [" "] * plot
    first, last = str(records[0]["epoch"]), str(records[-1]["epoch"])
    axis[:len(first)] = first
    axis[plot - len(last):] = last
    if len(first) < column(best) < plot - len(last):
        axis[column(best)] = "▲"
    text.append(" " * label + "└" + "─" * plot + "\n", style="dim")
    text.append(" " * (label + 1) + "".join(axis), style="dim")
    return text
