"""Every rich table and text the commands print: summaries, gradient checks, confusion matrices,
predictions and profiles (the training run's live view is specc.cli.trainview)."""
from __future__ import annotations

from typing import Sequence

import numpy as np
from rich.console import Console, Group, JustifyMethod, RenderableType
from rich.table import Table
from rich.text import Text

from specc.check import CheckedNetwork
from specc.diagnostics import render_diagnostics
from specc.gradcheck import RELATIVE_TOLERANCE
from specc.scaling import ScalePlan
from specc.source import Source
from specc.summary import Row, Summary
from specc.text import batch_shape, human_bytes, shape_text
from specc.training.compare import Comparison
from specc.training.ranges import fmt
from specc.training.sweep import Swept


def gradcheck_table(results, title: str) -> Table:
    t = Table(title=title, title_justify="left")
    columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("parameter", "left"), ("shape", "left"), ("checked", "right"),
        ("max abs error", "right"), ("relative error", "right"), ("result", "left"))
    for name, justify in columns:
        t.add_column(name, justify=justify, no_wrap=True)
    for r in results:
        t.add_row(r.name, shape_text(r.shape), f"{r.checked:,}", f"{r.max_abs:.2e}", f"{r.relative:.2e}",
                  _verdict(r))
    return t


def passes_on_absolute(r) -> bool:
    """A result that passes only on the absolute bound: its gradient is about zero (relative error ~1)."""
    return r.passed and r.relative > RELATIVE_TOLERANCE


def _verdict(r) -> Text:
    if not r.passed:
        return Text("FAIL", style="bold red")
    return Text("PASS (abs)" if passes_on_absolute(r) else "PASS", style="green")


def confusion_table(matrix: np.ndarray) -> Table:
    """Counts by true class (rows) and predicted class (columns), with each class's recall."""
    classes = len(matrix)
    t = Table(title="confusion matrix (rows: true class, columns: predicted)", title_justify="left")
    t.add_column("", justify="right", style="bold")
    for k in range(classes):
        t.add_column(str(k), justify="right")
    t.add_column("recall", justify="right")
    for k in range(classes):
        row = [Text(str(v), style="green" if j == k else ("red" if v else "dim")) for j, v in enumerate(matrix[k])]
        recall = matrix[k, k] / matrix[k].sum() if matrix[k].sum() else float("nan")
        t.add_row(str(k), *row, f"{recall:.3f}")
    return t


def prediction_table(result, images: Sequence[str], top: int, limit: int) -> Table:
    """One row per image (up to `limit`): its class, probability and the `top` classes."""
    probs = result.probabilities
    t = Table()  # (the command prints what the table shows above it: a title would wrap to its width)
    t.add_column("#", justify="right")
    if len(images) > 1:
        t.add_column("file")
    t.add_column("class", justify="right", style="bold")
    t.add_column("probability", justify="right")
    t.add_column(f"top {top}")
    files = [f for f, n in result.files for _ in range(n)]
    for i, p in enumerate(probs[:limit]):
        order = np.argsort(-p)[:top]
        t.add_row(str(i), *([files[i]] if len(images) > 1 else []), str(order[0]), f"{p[order[0]]:.4f}",
                  "  ".join(f"{k}: {p[k]:.3f}" for k in order))
    return t


def profile_table(p) -> Table:
    """Where a training step's time goes (specc bench): each kernel's forward and backward, the update."""
    total = p.total_ms
    t = Table()
    for name in ("kernel", "layers", "forward ms", "backward ms", "total ms", "share"):
        t.add_column(name, justify="left" if name in ("kernel", "layers") else "right", no_wrap=True)
    for k in p.kernels:
        both = k.forward_ms + k.backward_ms
        t.add_row(f"{k.kernel} {k.name}", k.layers, f"{k.forward_ms:.3f}", f"{k.backward_ms:.3f}", f"{both:.3f}",
                  f"{both / total:.1%}")
    t.add_row("update", "", "", "", f"{p.update_ms:.3f}", f"{p.update_ms / total:.1%}")
    t.add_row(Text("sum", style="bold"), "", f"{sum(k.forward_ms for k in p.kernels):.3f}",
              f"{sum(k.backward_ms for k in p.kernels):.3f}", f"{total:.3f}", "100%")
    return t


def summary_table(s: Summary) -> Group:
    """The summary as a rich table, totals in the footer, then the totals and the fused kernels
    in words (not as the table's caption, which rich would wrap to the table's width).

    On a narrow terminal only the `via` column wraps: numbers, shapes and names are never cut.
    The kernel column holds numbers; the fused kernels are named below the table.
    """
    show_via = any(r.via for r in s.rows)
    # (header, footer, justify, cells); `via` is the one column that may wrap
    columns: list[tuple[str, str, JustifyMethod, list[str]]]
    columns = [("#", "", "right", [str(r.index) for r in s.rows]),
               ("layer", "total", "left", [r.layer for r in s.rows]),
               ("line", "", "right", [f"{r.line}" if r.line else "-" for r in s.rows])]
    if show_via:
        columns.append(("via", "", "left", [r.via for r in s.rows]))
    columns += [("output", "", "left", [batch_shape(tuple(r.output)) for r in s.rows]),
                ("params", f"{s.params:,}", "right", [f"{r.params:,}" if r.params else "-" for r in s.rows]),
                ("FLOPs/sample", f"{s.flops:,}", "right", [f"{r.flops:,}" for r in s.rows]),
                ("kernel", f"{s.rows[-1].kernel if s.rows else 0}", "right", [str(r.kernel) for r in s.rows])]
    t = Table(title=f"{s.source or 'network'}: input {batch_shape(tuple(s.input))}", show_footer=True,
              title_justify="left")
    for header, footer, justify, cells in columns:
        fixed = header != "via"
        t.add_column(header, footer=footer, justify=justify, no_wrap=fixed,
                     min_width=max(len(x) for x in [header, footer, *cells]) if fixed else None)
    for row in zip(*(cells for *_, cells in columns)):
        t.add_row(*row)
    params = (f"parameters {s.params:,} ({human_bytes(s.param_bytes)} at float32)"
              + (f", non-trainable {s.buffers:,}" if s.buffers else ""))
    costs = (f"forward {s.flops:,} FLOPs per sample; "
             f"activations {human_bytes(s.activation_bytes)} per sample in training")
    lines: list[RenderableType] = [t, Text(params), Text(costs)]
    if s.training:
        m = s.training
        lines.append(Text(f"training memory {human_bytes(m['bytes'])} (batch {m['batch']}, {m['optimizer']}, "
                          f"{m['dtype']}): weights and optimizer {human_bytes(m['parameter_bytes'])}, "
                          f"buffers {human_bytes(m['buffer_bytes'])}"))
    return Group(*lines, Text(_fused(s.rows)))


def _fused(rows: list[Row]) -> str:
    """'fused: Convolution+ReLU (layers 1-2), Affine+ReLU (layers 4-5, 7-8)'."""
    members: dict[int, list[Row]] = {}
    for r in rows:
        members.setdefault(r.kernel, []).append(r)
    by_name: dict[str, list[str]] = {}
    for group in members.values():
        if len(group) > 1:
            by_name.setdefault(group[0].kernel_name, []).append(f"{group[0].index}-{group[-1].index}")
    return "fused: " + (", ".join(f"{name} (layers {', '.join(spans)})" for name, spans in by_name.items())
                        or "nothing")


def compare_table(result: Comparison, loss_at: int | None = None) -> Table:
    """One row per variant: its settings and the last epoch's figures (and the loss at one step)."""
    t = Table(title=f"{result.folder}: {len(result.outcomes)} variants, same data, order and seed",
              title_justify="left")
    t.add_column("variant", no_wrap=True)
    t.add_column("settings", no_wrap=True)
    t.add_column("iters", justify="right", no_wrap=True)
    if loss_at is not None:
        t.add_column(f"loss at {loss_at:,}", justify="right", no_wrap=True)
    for name in ("last loss", "train loss", "train acc", "test acc", "best test", "time s"):
        t.add_column(name, justify="right", no_wrap=True)
    best = max((o.final.get("test_acc", -1) for o in result.outcomes), default=None)
    for o in result.outcomes:
        r = o.final
        if o.failed is not None or not r:
            t.add_row(o.variant.name, o.settings, f"{len(o.losses):,}",
                      *(["-"] * (6 if loss_at is not None else 5)), Text("diverged" if o.failed else "-", style="red"))
            continue
        at = [] if loss_at is None else [_number(o.loss_at(loss_at), ".4f")]
        top = max(x["test_acc"] for x in o.records)
        test = Text(f"{r['test_acc']:.4f}", style="bold green" if r["test_acc"] == best else "")
        t.add_row(o.variant.name, o.settings, f"{r['iteration']:,}", *at, _number(o.losses[-1], ".4f"),
                  f"{r['train_loss']:.4f}", f"{r['train_acc']:.4f}", test, f"{top:.4f}", f"{r['elapsed_s']:.1f}")
    return t


def sweep_table(result: Swept, top: int) -> Table:
    """The trials ranked by their final validation accuracy, best first."""
    shown = result.ranked[:top]
    t = Table(title=f"{result.folder}: {len(result.ranked)} of {result.planned} trials finished; the best "
                    f"{len(shown)} by validation accuracy (held out of the training set)", title_justify="left")
    keys = list(shown[0].trial.values) if shown else []
    t.add_column("rank", justify="right")
    t.add_column("trial", justify="left")
    for k in keys:
        t.add_column(k, justify="right")
    for name in ("val acc", "best val", "train acc", "val loss"):
        t.add_column(name, justify="right", no_wrap=True)
    for rank, r in enumerate(shown, 1):
        last = r.records[-1] if r.records else {}
        t.add_row(str(rank), r.folder.name, *(fmt(r.trial.values[k]) for k in keys),
                  Text(f"{r.score:.4f}", style="bold green" if rank == 1 else ""),
                  _number(max((x["test_acc"] for x in r.records), default=None), ".4f"),
                  _number(last.get("train_acc"), ".4f"), _number(last.get("test_loss"), ".4f"))
    return t


def _number(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def scale_plan_table(p: ScalePlan) -> Group:
    """`specc plan`: the figures it starts from, then, per link, the expected speedup for each number of
    workers and the global batch below which the efficiency falls under 50%."""
    step = f"{p.step_ms:.3f} ms " + ("measured here" if p.measured else "given")
    update = f", {p.fixed_ms:.3f} ms of it fixed (not shrinking with the batch)" if p.fixed_ms else ""
    if p.sharded_ms:
        update += f", of which the update, {p.sharded_ms:.3f} ms, divides over the workers"
    moved = ("to reduce-scatter, and parameters to allgather, per step (the update sharded)" if p.sharded_ms
             else "to allreduce per step")
    head = [Text.assemble((p.source or "", "bold"), ": data-parallel training on paper"),
            Text(f"{p.parameters:,} parameters at {p.itemsize} bytes: {p.parameters * p.itemsize / 1e6:.3f} MB "
                 f"of gradients {moved}"),
            Text(f"batch {p.batch}: one process's step {step}{update}; {p.flops_per_step / 1e9:.3g} GFLOP "
                 f"(3 x forward), {p.gflops:.3g} GFLOP/s")]
    tables: list[RenderableType] = []
    for link in dict.fromkeys(e.link for e in p.estimates):
        t = Table(title=f"over {link.name} per message", title_justify="left")
        for name in ("workers", "MB sent", "compute ms", "comm ms", "step ms", "speedup", "efficiency",
                     "50% from batch"):
            t.add_column(name, justify="right", no_wrap=True)
        for e in (e for e in p.estimates if e.link == link):
            t.add_row(str(e.workers), f"{e.sent_bytes / 1e6:.3f}", f"{e.compute_ms:.3f}", f"{e.comm_ms:.3f}",
                      f"{e.step_ms:.3f}", Text(f"{e.speedup:.2f}x", style="bold red" if e.speedup < 1 else ""),
                      Text(f"{e.efficiency:.0%}", style="red" if e.efficiency < 0.5 else ""), f"{e.half_batch:,.0f}")
        tables.append(t)
    notes = Text("per worker and step: compute = (step - fixed) / N + fixed; comm = 2(N-1) x latency + "
                 "2(N-1)/N x bytes of the parameters / bandwidth (a ring allreduce, not overlapped with compute). "
                 "50% from batch: the global batch from which the efficiency (speedup / N) is at least 50%, "
                 "compute growing linearly with the batch; below it data parallelism stops paying.", style="dim")
    return Group(*head, *tables, notes)


def warn(net: CheckedNetwork, source: Source | None, stderr: Console) -> None:
    """A network's warnings, on stderr, before the command goes on (warnings never change the exit code)."""
    render_diagnostics(net.warnings, source, source.name if source else None, stderr)
