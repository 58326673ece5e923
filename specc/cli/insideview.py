"""The tables of `specc inspect` (activations per layer, filters, misclassified samples) and of
`specc eval --dtype float16` (one row per dtype)."""
from __future__ import annotations

from typing import Sequence

from rich.table import Table
from rich.text import Text

from specc.api.inside import FilterReport, MisclassifiedReport, Precision
from specc.inspection import NEAR_ZERO, Activations


def activations_table(caption: str, layers: Sequence[Activations]) -> Table:
    """One row per activation layer: where it is, its values' spread, and how many are near 0 or saturated."""
    t = Table(title=caption, title_justify="left")
    for name, justify in (("layer", "right"), ("", "left"), ("line", "right"), ("mean", "right"),
                          ("std", "right"), ("min", "right"), ("max", "right"),
                          (f"|a| < {NEAR_ZERO:g}", "right"), ("saturated", "right")):
        t.add_column(name, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for a in layers:
        saturated = a.saturated
        t.add_row(str(a.index), a.name, str(a.line or ""), f"{a.mean:.4f}", f"{a.std:.4f}",
                  f"{a.values.min():.4g}", f"{a.values.max():.4g}", _share(a.near_zero),
                  "-" if saturated is None else _share(saturated))
    return t


def _share(f: float) -> Text:
    return Text(f"{f:.1%}", style="bold red" if f >= 0.5 else ("yellow" if f >= 0.2 else ""))


def filters_table(report: FilterReport) -> Table:
    first = report.panels[0][1]
    t = Table(title=f"{first.name} (layer {first.index}, line {first.line}): {first.weights.shape[0]} filters "
                    f"of {'x'.join(str(d) for d in first.weights.shape[1:])}", title_justify="left")
    for name in ("weights", "mean", "std", "min", "max", "neighbour correlation"):
        t.add_column(name, justify="left" if name == "weights" else "right", no_wrap=True)
    for caption, f in report.panels:
        w = f.weights
        t.add_row(caption, f"{w.mean():.4f}", f"{f.std:.4f}", f"{w.min():.4f}", f"{w.max():.4f}",
                  f"{f.smoothness:+.3f}")
    return t


def misclassified_table(report: MisclassifiedReport) -> Table:
    m = report.found
    t = Table(title=f"the first {len(m.indices)} misclassified", title_justify="left")
    for name in ("view", "sample", "label", "guess"):
        t.add_column(name, justify="right", no_wrap=True)
    for k, (i, label, guess) in enumerate(zip(m.indices, m.labels, m.guesses), 1):
        t.add_row(str(k), f"{i:,}", str(label), Text(str(guess), style="red"))
    return t


def precision_table(rows: Sequence[Precision], reference: str = "float64") -> Table:
    """Accuracy, loss and time per dtype, and how many predictions differ from the reference's."""
    base = next((r for r in rows if r.dtype == reference), rows[-1])
    t = Table(title="the same weights in " + ", ".join(r.dtype for r in rows), title_justify="left")
    for name in ("dtype", "accuracy", "loss", f"predictions unlike {base.dtype}", "seconds"):
        t.add_column(name, justify="left" if name == "dtype" else "right", no_wrap=True)
    for r in rows:
        differ = int((r.evaluation.predicted != base.evaluation.predicted).sum())
        t.add_row(r.dtype, f"{r.evaluation.accuracy:.4f}", f"{r.evaluation.loss:.4f}", f"{differ:,}",
                  f"{r.seconds:.2f}")
    return t
