"""How specc writes shapes, sizes and values in its messages and tables: one place for each."""
from __future__ import annotations

import json
from typing import Any

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def shape_text(shape: tuple[int, ...]) -> str:
    """A shape as sizes joined by 'x': 784x50, 30x12x12 ('a scalar' for ())."""
    return "x".join(map(str, shape)) if shape else "a scalar"


def batch_shape(shape: tuple[int, ...]) -> str:
    """A per-sample shape with the batch axis shown: (N, 30, 12, 12)."""
    return "(" + ", ".join(["N", *map(str, shape)]) + ")"


def human_bytes(n: float) -> str:
    """1,023 B, 1.0 KiB, 3.5 MiB ... up to TiB."""
    for unit in _UNITS:
        if n < 1024 or unit == _UNITS[-1]:
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def value_text(value: Any, quote: bool = True) -> str:
    """A value as a message shows it: 0.1, 784, true, 'he' (or he with quote=False, as an
    argument is written in a layer's description), a short JSON excerpt for lists and objects."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "nothing"
    if isinstance(value, float):
        shown = f"{value:g}"
        return shown + ".0" if shown.lstrip("-").isdigit() else shown  # 784.0 is not shown as 784
    if isinstance(value, str):
        return f"'{value}'" if quote else value
    if isinstance(value, (dict, list)):
        text = json.dumps(value)
        return text if len(text) < 40 else text[:37] + "..."
    return str(value)
