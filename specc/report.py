"""The HTML report of training runs: one self-contained page (no network; every image inline as SVG or a
data URI) with each run's spec, summary, drawing, learning curves, final metrics, confusion matrix,
misclassified test samples, settings and versions; several runs stand side by side."""
from __future__ import annotations

import base64
import html
import json
import struct
import zlib
from typing import Any, Sequence

import numpy as np

from specc.api import RunReport
from specc.text import batch_shape, human_bytes

SECTIONS = ("metrics", "curves", "confusion", "misclassified", "spec", "summary", "drawing", "settings")
_TITLES = {"metrics": "Final metrics", "curves": "Learning curves", "confusion": "Confusion matrix (test set)",
           "misclassified": "Misclassified test samples", "spec": "Spec", "summary": "Summary",
           "drawing": "Network", "settings": "Settings and versions"}
_COLORS = {"train": "#1f77b4", "test": "#ff7f0e", "loss": "#2ca02c"}


def render(runs: Sequence[RunReport]) -> str:
    """The page: one column per run, one row per section."""
    title = " vs ".join(r.folder.name for r in runs)
    rows = []
    for section in SECTIONS:
        cells = "".join(f'<div class="cell">{_SECTION[section](r)}</div>' for r in runs)
        rows.append(f'<section id="{section}"><h2>{_TITLES[section]}</h2>'
                    f'<div class="runs" style="grid-template-columns: repeat({len(runs)}, minmax(0, 1fr))">'
                    f'{cells}</div></section>')
    heads = "".join(f'<div class="cell"><h1>{_e(r.folder.name)}</h1><p class="sub">{_e(_headline(r))}</p></div>'
                    for r in runs)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>specc report: {_e(title)}'
            f'</title><style>{_CSS}</style></head><body><header class="runs" style="grid-template-columns: '
            f'repeat({len(runs)}, minmax(0, 1fr))">{heads}</header>{"".join(rows)}'
            f'<footer>written by specc report; this page is self-contained and loads nothing</footer>'
            f'</body></html>\n')


def _headline(r: RunReport) -> str:
    s, d = r.config.get("settings", {}), r.config.get("data", {})
    args = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                     for k, v in s.get("optimizer_args", {}).items())
    return (f"{r.spec_name} on {d.get('name', '?')}: {s.get('optimizer', '?')}({args}), batch {s.get('batch', '?')}, "
            f"{len(r.records)} evaluations, {r.records[-1]['iteration']:,} iterations" if r.records else
            f"{r.spec_name} on {d.get('name', '?')}")


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


# --- sections --------------------------------------------------------------------------------------

def _metrics(r: RunReport) -> str:
    ev = r.evaluation
    best = max(r.records, key=lambda x: x["test_acc"]) if r.records else None
    last = r.records[-1] if r.records else None
    cards = [("test accuracy", f"{ev.accuracy:.4f}", "of weights.npz on the test set"),
             ("test loss", f"{ev.loss:.4f}", f"{len(ev.labels):,} samples")]
    if best:
        cards.append(("best test accuracy", f"{best['test_acc']:.4f}", f"epoch {best['epoch']} (best.npz)"))
    if last:
        cards += [("train accuracy", f"{last['train_acc']:.4f}", f"epoch {last['epoch']}"),
                  ("training time", f"{last['elapsed_s']:.1f} s", f"{last['samples_per_s']:,.0f} samples/s at the end")]
    return '<div class="cards">' + "".join(
        f'<div class="card"><div class="k">{_e(k)}</div><div class="v">{_e(v)}</div><div class="n">{_e(n)}</div>'
        f'</div>' for k, v, n in cards) + "</div>"


def _curves(r: RunReport) -> str:
    if not r.records:
        return "<p>no evaluations yet</p>"
    from specc.training.plot import caption

    loss = _chart(r.records, "loss", [("loss", "training loss (epoch mean)", _COLORS["loss"]),
                                      ("train_loss", "train loss", _COLORS["train"]),
                                      ("test_loss", "test loss", _COLORS["test"])])
    acc = _chart(r.records, "accuracy", [("train_acc", "train accuracy", _COLORS["train"]),
                                         ("test_acc", "test accuracy", _COLORS["test"])])
    return (f'<div class="charts">{loss}{acc}</div><p class="sub">{_e(caption(r.records, r.config))}; '
            f'hover a point for its value; the dashed line is the best test accuracy</p>')


def _chart(records: Sequence[dict[str, Any]], what: str, series: list[tuple[str, str, str]]) -> str:
    """An SVG line chart by epoch; every point carries a <title>, the browser's tooltip on hover."""
    from specc.training.plot import epoch_ticks

    series = [s for s in series if all(s[0] in r for r in records)]
    w, h, left, right, top, bottom = 520, 300, 56, 14, 48, 40
    epochs = [r["epoch"] for r in records]
    values = [float(r[k]) for k, *_ in series for r in records if np.isfinite(r[k])]
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    pad = (high - low) * 0.08 or 0.5
    low, high = low - pad, high + pad
    if min(values, default=0.0) >= 0:
        low = max(low, 0.0)  # a loss or an accuracy is never negative: no axis below 0
    if what == "accuracy":
        high = min(high, 1.0)
    e0, e1 = epochs[0], max(epochs[-1], epochs[0] + 1)

    def x(e: float) -> float:
        return left + (e - e0) / (e1 - e0) * (w - left - right) if len(epochs) > 1 else (left + w - right) / 2

    def y(v: float) -> float:
        return top + (high - v) / (high - low) * (h - top - bottom)

    out = [f'<svg class="chart" role="img" aria-label="{what} by epoch" viewBox="0 0 {w} {h}" '
           f'xmlns="http://www.w3.org/2000/svg"><text x="{left}" y="16" class="ct">{what} by epoch</text>']
    for i in range(5):
        v = low + (high - low) * i / 4
        out.append(f'<line x1="{left}" x2="{w - right}" y1="{y(v):.1f}" y2="{y(v):.1f}" class="grid"/>'
                   f'<text x="{left - 6}" y="{y(v) + 4:.1f}" class="tick" text-anchor="end">{v:.3g}</text>')
    for e in epoch_ticks(epochs):
        out.append(f'<text x="{x(e):.1f}" y="{h - bottom + 16}" class="tick" text-anchor="middle">{e}</text>')
    out.append(f'<text x="{(left + w - right) / 2}" y="{h - 6}" class="tick" text-anchor="middle">epoch</text>')
    best = max(records, key=lambda r: r["test_acc"])["epoch"]
    out.append(f'<line x1="{x(best):.1f}" x2="{x(best):.1f}" y1="{top}" y2="{h - bottom}" class="best"/>')
    for n, (key, label, color) in enumerate(series):
        points = [(x(r["epoch"]), y(r[key]), r) for r in records if np.isfinite(r[key])]
        out.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="'
                   + " ".join(f"{px:.1f},{py:.1f}" for px, py, _ in points) + '"/>')
        for px, py, rec in points:
            out.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="4" fill="{color}"><title>{_e(label)}, epoch '
                       f'{rec["epoch"]} (iteration {rec["iteration"]:,}): {rec[key]:.4f}</title></circle>')
        lx = left + sum(24 + 6.2 * len(s[1]) for s in series[:n])  # a legend row under the title
        out.append(f'<rect x="{lx:.0f}" y="26" width="12" height="3" fill="{color}"/>'
                   f'<text x="{lx + 16:.0f}" y="31" class="legend">{_e(label)}</text>')
    return "".join(out) + "</svg>"


def _confusion(r: RunReport) -> str:
    m = r.evaluation.confusion(r.classes)
    peak = max(int(m.max()), 1)
    head = "".join(f"<th>{k}</th>" for k in range(r.classes))
    rows = []
    for k in range(r.classes):
        cells = []
        for j in range(r.classes):
            v = int(m[k, j])
            share = v / peak
            # the diagonal in blue, mistakes in red; the shade is the count against the largest cell
            color = f"rgba(31,119,180,{0.08 + 0.92 * share:.2f})" if j == k else \
                f"rgba(214,39,40,{(0.15 + 0.85 * min(1.0, v / max(1, m[k].sum()) * 5)) if v else 0:.2f})"
            ink = "#fff" if (j == k and share > 0.5) else "#222"
            cells.append(f'<td style="background:{color};color:{ink}" title="true {k}, predicted {j}: {v}">{v}</td>')
        recall = m[k, k] / m[k].sum() if m[k].sum() else float("nan")
        rows.append(f"<tr><th>{k}</th>{''.join(cells)}<td class='recall'>{recall:.3f}</td></tr>")
    return (f'<table class="confusion"><tr><th>true \\ predicted</th>{head}<th>recall</th></tr>{"".join(rows)}'
            f'</table>')


def _misclassified(r: RunReport) -> str:
    if len(r.misclassified) == 0:
        return "<p>every test sample is classified right</p>"
    wrong = len(r.evaluation.labels) - int((r.evaluation.predicted == r.evaluation.labels).sum())
    tiles = []
    for i, image in zip(r.misclassified, r.test_images):
        label, guess = int(r.evaluation.labels[i]), int(r.evaluation.predicted[i])
        tiles.append(f'<figure class="digit"><img alt="test sample {i}: label {label}, guess {guess}" '
                     f'src="data:image/png;base64,{_png(image)}"><figcaption>{label} → <b>{guess}</b></figcaption>'
                     f'</figure>')
    return (f'<p class="sub">{wrong:,} of {len(r.evaluation.labels):,} wrong; the first {len(tiles)} shown as '
            f'label → guess</p><div class="digits">{"".join(tiles)}</div>')


def _spec(r: RunReport) -> str:
    lines = r.spec_text.splitlines()
    numbered = "\n".join(f'<span class="ln">{n:>3}</span> {_e(line)}' for n, line in enumerate(lines, 1))
    return f"<p class='sub'>{_e(r.spec_name)}, as run</p><pre class='spec'>{numbered}</pre>"


def _summary(r: RunReport) -> str:
    s = r.summary
    rows = "".join(f"<tr><td>{row.index}</td><td>{_e(row.layer)}</td><td>{row.line or '-'}</td>"
                   f"<td>{_e(batch_shape(tuple(row.output)))}</td><td class='n'>{row.params:,}</td>"
                   f"<td class='n'>{row.flops:,}</td><td class='n'>{row.kernel}</td></tr>" for row in s.rows)
    return (f"<table class='summary'><tr><th>#</th><th>layer</th><th>line</th><th>output</th><th>params</th>"
            f"<th>FLOPs/sample</th><th>kernel</th></tr>"
            f"<tr><td></td><td>input</td><td></td><td>{_e(batch_shape(tuple(s.input)))}</td><td></td><td></td>"
            f"<td></td></tr>{rows}<tr class='total'><td></td><td>total</td><td></td><td></td>"
            f"<td class='n'>{s.params:,}</td><td class='n'>{s.flops:,}</td><td></td></tr></table>"
            f"<p class='sub'>parameters {s.params:,} ({human_bytes(s.param_bytes)} at float32); activations "
            f"{human_bytes(s.activation_bytes)} per sample in training</p>")


def _drawing(r: RunReport) -> str:
    data = base64.b64encode(r.drawing_svg.encode("utf-8")).decode("ascii")
    return (f'<div class="drawing"><img alt="the layer pipeline of {_e(r.spec_name)}" '
            f'src="data:image/svg+xml;base64,{data}"></div><p class="sub">as <code>specc draw</code> draws it: '
            f'dashed frames are fused kernels</p>')


def _settings(r: RunReport) -> str:
    versions = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in r.versions.items())
    return (f"<pre class='json'>{_e(json.dumps(r.config, indent=2))}</pre>"
            f"<table class='versions'>{versions}</table>")


_SECTION = {"metrics": _metrics, "curves": _curves, "confusion": _confusion, "misclassified": _misclassified,
            "spec": _spec, "summary": _summary, "drawing": _drawing, "settings": _settings}


def _png(image: np.ndarray) -> str:
    """A grayscale image as a base64 PNG (8-bit, no filter), written with zlib alone: no imaging library."""
    a = np.asarray(image)
    a = a.reshape(a.shape[-2:]) if a.ndim > 2 else a
    if a.dtype != np.uint8:
        lo, hi = float(a.min()), float(a.max())
        a = ((a - lo) / ((hi - lo) or 1) * 255).round().astype(np.uint8)
    height, width = a.shape
    raw = b"".join(b"\x00" + a[row].tobytes() for row in range(height))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))
    return base64.b64encode(png).decode("ascii")


_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;max-width:1400px;padding:16px 24px;
color:#222;background:#fafafa}
h1{font-size:22px;margin:4px 0}h2{font-size:17px;margin:0 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
section{background:#fff;border:1px solid #e4e4e4;border-radius:6px;padding:12px 16px;margin:14px 0}
.runs{display:grid;gap:20px}.cell{min-width:0}.sub{color:#666;margin:4px 0}
.cards{display:flex;flex-wrap:wrap;gap:10px}.card{border:1px solid #e4e4e4;border-radius:6px;padding:8px 12px;
min-width:130px}.card .k{color:#666;font-size:12px}.card .v{font-size:22px;font-weight:600}.card .n{color:#888;
font-size:12px}
.charts{display:flex;flex-wrap:wrap;gap:12px}.chart{width:520px;max-width:100%;height:auto;background:#fff}
.chart .grid{stroke:#eee}.chart .tick,.chart .legend{font-size:11px;fill:#555}.chart .ct{font-size:13px;
font-weight:600}.chart .best{stroke:#d62728;stroke-dasharray:4 3;opacity:.6}.chart circle:hover{r:6}
table{border-collapse:collapse}td,th{padding:3px 7px}.summary td,.summary th{border-bottom:1px solid #eee;
text-align:left}.summary .n{text-align:right;font-variant-numeric:tabular-nums}.summary .total{font-weight:600}
.confusion td{width:34px;height:28px;text-align:center;font-variant-numeric:tabular-nums;border:1px solid #fff}
.confusion th{font-weight:600;color:#555}.confusion .recall{color:#555;width:auto}
.digits{display:flex;flex-wrap:wrap;gap:8px}.digit{margin:0;text-align:center}.digit img{width:56px;height:56px;
image-rendering:pixelated;border:1px solid #ddd;background:#000}.digit figcaption{font-size:12px}
pre{background:#f4f4f4;padding:8px 10px;border-radius:4px;overflow:auto;font-size:12.5px}.ln{color:#aaa}
pre.json{max-height:320px}.versions th{text-align:left;color:#555}
.drawing{overflow-x:auto}.drawing img{max-width:none;height:auto}
footer{color:#999;font-size:12px;text-align:center;margin:20px 0}
"""
