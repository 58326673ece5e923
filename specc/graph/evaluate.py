"""Evaluating a checked graph forward, then backward from the output by the chain rule (reverse mode),
and checking each gradient against central differences."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from specc.errors import Diagnostic, Label, SpecError
from specc.graph.check import CheckedGraph
from specc.graph.ir import Node
from specc.graph.ops import OPS, Backward, unbroadcast

STEP = 1e-5  # central differences: (f(x + h) - f(x - h)) / 2h
RTOL, ATOL = 1e-6, 1e-8


@dataclass(frozen=True)
class Sent:
    """What a node sends back to one operand: g times the local derivative, broadcasting undone."""

    operand: str
    rule: str  # the local derivative in words ("b": the other input)
    local: np.ndarray | None  # its value, for an element-wise node
    gradient: np.ndarray


@dataclass(frozen=True)
class Step:
    """One node of the backward pass: its forward value, the upstream gradient it received, what it sent."""

    node: Node
    value: np.ndarray
    upstream: np.ndarray
    sent: tuple[Sent, ...]


@dataclass(frozen=True)
class Check:
    """Backprop against central differences for one input."""

    name: str
    numeric: np.ndarray
    max_abs: float
    passed: bool


@dataclass(frozen=True)
class Evaluation:
    checked: CheckedGraph
    values: dict[str, np.ndarray]  # every input's and node's forward value
    steps: tuple[Step, ...]  # in backward order
    gradients: dict[str, np.ndarray]  # d(output)/d(input), per input; 0 where the output does not use it

    @property
    def output(self) -> np.ndarray:
        return self.values[self.checked.graph.output]


def forward(checked: CheckedGraph, inputs: dict[str, np.ndarray] | None = None,
            strict: bool = True) -> tuple[dict[str, np.ndarray], dict[str, Backward]]:
    """Every value, and every node's backward closure. With `strict`, a non-positive value reaching
    log or sqrt is an error at the node; otherwise it gives NaN (as NumPy would)."""
    g = checked.graph
    values = {i.name: (inputs or {}).get(i.name, i.value) for i in g.inputs}
    closures: dict[str, Backward] = {}
    for n in g.nodes:
        if n.op == "const":
            values[n.id] = np.array(float(n.value or 0.0))
            continue
        op = OPS[n.op]
        xs = tuple(values[o] for o in n.operands)
        if op.domain == "positive" and strict:
            _positive(n, xs[0])
        if n.op == "div" and strict:
            _nonzero(n, xs[1])
        with np.errstate(all="ignore"):
            values[n.id], closures[n.id] = op.run(xs, n.attrs)
        if strict and not np.isfinite(values[n.id]).all() and all(np.isfinite(x).all() for x in xs):
            _not_finite(n, xs, values[n.id])
    return values, closures


def _first(bad: np.ndarray, x: np.ndarray) -> tuple[float, str]:
    """The first flagged element's value, and where it is (nothing for a scalar)."""
    first = tuple(int(i) for i in bad[0])
    return (float(x[first]) if first else float(x)), (f" at {list(first)}" if first else "")


def _nonzero(n: Node, b: np.ndarray) -> None:
    bad = np.argwhere(b == 0)
    if not len(bad):
        return
    where = _first(bad, b)[1]
    notes = (Label(n.operand_spans[1], f"evaluates to 0.0{where}"),) if len(n.operand_spans) > 1 else ()
    what = f"{len(bad)} zero divisors, the first{where}" if len(bad) > 1 else f"a divisor of 0.0{where}"
    raise SpecError([Diagnostic(f"div receives {what}", n.span, "domain", "",
                                "a / b is defined for b ≠ 0 (its derivative −a/b² too)", notes)])


def _not_finite(n: Node, xs: tuple[np.ndarray, ...], y: np.ndarray) -> None:
    """A node whose finite operands gave NaN or infinity: a power outside its domain, or a result
    beyond float64's range."""
    bad = np.argwhere(~np.isfinite(y))
    value, where = _first(bad, y)
    at = tuple(bad[0])
    try:  # an element-wise node: its operands' values there
        operands = [] if n.op == "matmul" else [float(np.broadcast_to(x, y.shape)[at]) for x in xs]
    except ValueError:  # a reduction: no one element to show
        operands = []
    notes = tuple(Label(sp, f"evaluates to {v!r}{where}") for sp, v in zip(n.operand_spans, operands) if sp)
    if n.op == "pow" and operands and (np.isnan(value) or operands[0] == 0):
        reason = ("a fractional power of a negative number is not a real number" if np.isnan(value) else
                  "a negative power of 0 is infinite")
        raise SpecError([Diagnostic(f"pow receives {operands[0]!r}{where}", n.span, "domain", "", reason, notes)])
    reason = ("exp overflows float64 above 709.78" if n.op == "exp" else
              "the result is beyond float64's range (about 1.8e308)")
    raise SpecError([Diagnostic(f"{n.op} overflows: {value!r}{where} from finite operands", n.span, "overflow", "",
                                reason, notes)])


def _positive(n: Node, x: np.ndarray) -> None:
    bad = np.argwhere(~(x > 0))
    if not len(bad):
        return
    value, where = _first(bad, x)
    what = f"{len(bad)} non-positive values, the first {value!r}{where}" if len(bad) > 1 else f"{value!r}{where}"
    reason = "log is defined for positive numbers only" if n.op == "log" else \
        "sqrt's derivative 1/(2·sqrt(a)) needs a > 0"
    notes = (Label(n.operand_spans[0], f"evaluates to {value!r}{where}"),) if n.operand_spans else ()
    raise SpecError([Diagnostic(f"{n.op} receives {what}", n.span, "domain", "", reason, notes)])


def evaluate(checked: CheckedGraph) -> Evaluation:
    """Forward, then backward from the output with upstream gradient 1 (ones for an array)."""
    g = checked.graph
    values, closures = forward(checked)
    grads: dict[str, np.ndarray] = {g.output: np.ones_like(values[g.output])}
    steps = []
    for n in reversed(g.nodes):
        if n.id not in grads or n.op == "const":
            continue
        upstream = grads[n.id]
        op = OPS[n.op]
        sent = []
        for k, ((grad, local), operand) in enumerate(zip(closures[n.id](upstream), n.operands)):
            grad = unbroadcast(grad, checked.shapes[operand])
            sent.append(Sent(operand, op.rules[k], None if local is None else np.asarray(local), grad))
            grads[operand] = grads[operand] + grad if operand in grads else grad
        steps.append(Step(n, values[n.id], upstream, tuple(sent)))
    gradients = {i.name: grads.get(i.name, np.zeros_like(i.value)) for i in g.inputs}
    return Evaluation(checked, values, tuple(steps), gradients)


def numeric_checks(result: Evaluation, limit: int = 2000) -> tuple[Check, ...]:
    """Each input's gradient against central differences of sum(output), element by element
    (at most `limit` elements per input; the rest are not checked)."""
    checked = result.checked
    out = []
    for i in checked.graph.inputs:
        x = i.value.astype(np.float64)
        numeric = np.full(x.shape, np.nan)
        for k in range(min(x.size, limit)):
            idx = np.unravel_index(k, x.shape) if x.shape else ()
            sums = []
            for sign in (1, -1):
                moved = x.copy()
                moved[idx] += sign * STEP
                values, _ = forward(checked, {i.name: moved}, strict=False)
                sums.append(float(np.sum(values[checked.graph.output])))
            numeric[idx] = (sums[0] - sums[1]) / (2 * STEP)
        analytic = result.gradients[i.name]
        shown = ~np.isnan(numeric)
        diff = np.abs(analytic - numeric)[shown]
        max_abs = float(diff.max()) if diff.size else 0.0
        passed = bool(np.allclose(analytic[shown], numeric[shown], rtol=RTOL, atol=ATOL * max(1.0, STEP)) and
                      np.isfinite(numeric[shown]).all()) if shown.any() else False
        out.append(Check(i.name, numeric, max_abs, passed))
    return tuple(out)
