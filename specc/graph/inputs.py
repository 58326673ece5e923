"""The values of a graph's inputs: a number, a list of numbers or of equally long rows, or a fill
(randn, rand, zeros, ones) of a shape; each as the IR holds it, or None after an error."""
from __future__ import annotations

from typing import Any, Protocol

from specc import syntax as s
from specc.errors import Label
from specc.source import Span
from specc.suggest import did_you_mean

FILLS = ("randn", "rand", "zeros", "ones")
MAX_ELEMENTS = 1_000_000  # per input: graphs are worked examples, not data sets


class Reporter(Protocol):
    """Where the errors go (the lowering's state, specc.graph.lower)."""

    def error(self, message: str, span: Span | None, code: str, label: str = "", hint: str | None = None,
              notes: tuple[Label, ...] = ()) -> None: ...


def input_value(st: Reporter, v: s.Number | s.Array | s.Call) -> Any:
    """An input's value as the IR holds it (a number, nested lists, a fill's dict), or None after an error."""
    if isinstance(v, s.Number):
        return v.value
    if isinstance(v, s.Array):
        return _array(st, v)
    return _fill(st, v)


def _array(st: Reporter, a: s.Array) -> list | None:
    if not a.items:
        st.error("an empty list", a.span, "bad-array", hint="an input holds at least one number")
        return None
    kinds = {isinstance(i, s.Array) for i in a.items}
    if len(kinds) > 1:
        st.error("a list mixes numbers and lists", a.span, "bad-array",
                 hint="write every row as a list: `[[1.0, 2.0], [3.0, 4.0]]`")
        return None
    if kinds == {False}:
        return [i.value for i in a.items if isinstance(i, s.Number)]
    rows = [_array(st, i) for i in a.items if isinstance(i, s.Array)]
    if any(r is None for r in rows):
        return None
    shapes = [_nested_shape(r) for r in rows]
    if len(set(shapes)) > 1:
        odd = next(i for i, sh in enumerate(shapes) if sh != shapes[0])
        item = a.items[odd]
        st.error(f"the rows of an array have different lengths ({len(rows[0] or [])} and {len(rows[odd] or [])})",
                 item.span, "ragged-array", "this row", notes=(Label(a.items[0].span, "the first row"),))
        return None
    return rows


def _nested_shape(v: Any) -> tuple[int, ...]:
    return (len(v),) + _nested_shape(v[0]) if isinstance(v, list) else ()


def _fill(st: Reporter, c: s.Call) -> dict[str, Any] | None:
    if c.name not in FILLS:
        st.error(f"unknown fill '{c.name}'", c.name_span, "unknown-fill", "not a fill",
                 hint=did_you_mean(c.name, FILLS) or "an input is a number, a list, or randn/rand/zeros/ones(shape)")
        return None
    dims = [a.value for a in c.args if a.key is None]
    keys = {a.key: a for a in c.args if a.key is not None}
    ok = True
    for a in c.args:
        if a.key is None and not (isinstance(a.value, s.Number) and isinstance(a.value.value, int)
                                  and a.value.value >= 1):
            st.error(f"{c.name}: a dimension is a positive integer", a.span, "bad-fill")
            ok = False
        elif a.key is not None and a.key not in ("seed", "scale"):
            st.error(f"{c.name} has no argument '{a.key}'", a.key_span, "bad-fill",
                     hint=did_you_mean(a.key, ["seed", "scale"]) or f"{c.name} takes its shape, seed= and scale=")
            ok = False
    seed = keys["seed"].value if "seed" in keys else None
    if seed is not None and not (isinstance(seed, s.Number) and isinstance(seed.value, int) and seed.value >= 0):
        st.error(f"{c.name}: seed is a whole number", keys["seed"].span, "bad-fill")
        ok = False
    scale = keys["scale"].value if "scale" in keys else None
    if scale is not None and not isinstance(scale, s.Number):
        st.error(f"{c.name}: scale is a number", keys["scale"].span, "bad-fill")
        ok = False
    if not ok:
        return None
    shape = [d.value for d in dims if isinstance(d, s.Number)]
    total = 1
    for d in shape:
        total *= int(d)
    if total > MAX_ELEMENTS:
        st.error(f"{c.name}({', '.join(map(str, shape))}) holds {total:,} numbers; an input holds at most "
                 f"{MAX_ELEMENTS:,}", c.span, "too-large")
        return None
    out: dict[str, Any] = {"fill": c.name, "shape": shape}
    if c.name in ("randn", "rand"):
        out["seed"] = seed.value if isinstance(seed, s.Number) else 0
    if isinstance(scale, s.Number):
        out["scale"] = scale.value
    return out
