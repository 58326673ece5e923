"""A few SVG elements written as text (labels escaped), for specc's drawings; no drawing library needed."""
from __future__ import annotations

from xml.sax.saxutils import escape, quoteattr

FONT = "DejaVu Sans, Helvetica, Arial, sans-serif"
CHAR = 7.2  # the width of a character at 12px, roughly: what layouts reserve for a label


def width(text: str, size: float = 12) -> float:
    return len(text) * CHAR * size / 12


def document(w: float, h: float, body: list[str], title: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{w:.0f}" height="{h:.0f}" '
            f'viewBox="0 0 {w:.0f} {h:.0f}" font-family={quoteattr(FONT)} font-size="12">\n'
            f'<title>{escape(title)}</title>\n'
            '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
            'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#333"/></marker></defs>\n'
            f'<rect width="100%" height="100%" fill="white"/>\n' + "\n".join(body) + "\n</svg>\n")


def text(x: float, y: float, s: str, *, anchor: str = "middle", fill: str = "#222", size: float = 12,
         cls: str = "", weight: str = "normal") -> str:
    c = f" class={quoteattr(cls)}" if cls else ""
    return (f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" fill="{fill}" font-size="{size:g}" '
            f'font-weight="{weight}"{c}>{escape(s)}</text>')


def circle(x: float, y: float, r: float, cls: str = "node") -> str:
    return f'<circle class="{cls}" cx="{x:.1f}" cy="{y:.1f}" r="{r:g}" fill="white" stroke="#333" stroke-width="1.5"/>'


def rect(x: float, y: float, w: float, h: float, *, cls: str = "", dashed: bool = False, fill: str = "white",
         stroke: str = "#333") -> str:
    dash = ' stroke-dasharray="5,4"' if dashed else ""
    c = f' class="{cls}"' if cls else ""
    return (f'<rect{c} x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" rx="6" fill="{fill}" '
            f'stroke="{stroke}" stroke-width="1.5"{dash}/>')


def arrow(x1: float, y1: float, x2: float, y2: float, cls: str = "edge") -> str:
    return (f'<line class="{cls}" x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="#333" '
            f'stroke-width="1.3" marker-end="url(#arrow)"/>')
