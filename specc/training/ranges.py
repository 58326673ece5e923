"""The values an experiment varies, as written on the command line: lists (`SGD,Adam`, `0,0.1`,
`std=0.01,xavier,he`) and ranges (`1e-6..1e-2:log` drawn at random, `1..1e-4:log:16` a grid)."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from specc.errors import Diagnostic, UsageError

_RANGE = re.compile(r"^\s*(?P<low>[^.:\s][^:]*?)\.\.(?P<high>[^:]+?)(?P<log>:log)?(?::(?P<points>\d+))?\s*$")
INITS = ("he", "xavier", "auto")


@dataclass(frozen=True)
class Range:
    """A setting's values: `choices` (a list), or low..high, uniform or log-uniform, drawn at random
    (points None) or as a grid of `points` values."""

    flag: str
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    points: int | None = None
    choices: tuple[Any, ...] | None = None

    @property
    def is_grid(self) -> bool:
        return self.choices is not None or self.points is not None

    def grid(self) -> list[Any]:
        if self.choices is not None:
            return list(self.choices)
        assert self.points is not None
        if self.log:
            return [float(v) for v in np.logspace(math.log10(self.low), math.log10(self.high), self.points)]
        return [float(v) for v in np.linspace(self.low, self.high, self.points)]

    def draw(self, rng: np.random.Generator) -> Any:
        if self.choices is not None:
            return self.choices[int(rng.integers(len(self.choices)))]
        if self.log:  # 10 ** U(log10 low, log10 high): the book's lr = 10 ** np.random.uniform(-6, -2)
            return float(10 ** rng.uniform(math.log10(self.low), math.log10(self.high)))
        return float(rng.uniform(self.low, self.high))

    def describe(self) -> str:
        if self.choices is not None:
            return ",".join(str(c) for c in self.choices)
        return f"{self.low:g}..{self.high:g}" + (":log" if self.log else "") + \
            (f":{self.points}" if self.points else "")


def _usage(flag: str, text: str, why: str) -> UsageError:
    return UsageError([Diagnostic(f"--{flag} {text}: {why}", None, "bad-range",
                                  hint="write a list (0,0.1) or a range: 1e-6..1e-2 (uniform), 1e-6..1e-2:log "
                                       "(log-uniform), 1..1e-4:log:16 (a grid of 16 values)")])


def number(flag: str, text: str, positive: bool = False) -> float:
    try:
        value = float(text)
    except ValueError:
        raise _usage(flag, text, f"'{text}' is not a number") from None
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        raise _usage(flag, text, f"{text} must be a {'positive' if positive else 'non-negative'} number")
    return value


def init_value(flag: str, text: str) -> str | float:
    """An init as `--init` writes it: he, xavier, auto, a standard deviation, or std=0.01 (the book's key)."""
    word = text.strip()
    if word.lower() in INITS:
        return word.lower()
    if word.lower().startswith("std="):
        word = word[4:]
    return number(flag, word, positive=True)


def parse(flag: str, text: str, item: Callable[[str, str], Any] | None = None, positive: bool = False) -> Range:
    """A Range from the command line; `item` reads one list entry (default: a number)."""
    read = item or (lambda f, t: number(f, t, positive))
    m = _RANGE.match(text)
    if m and not text.strip().lower().startswith("std="):
        low, high = number(flag, m["low"], positive), number(flag, m["high"], positive)
        log = m["log"] is not None
        if log and (low <= 0 or high <= 0):
            raise _usage(flag, text, "a log range needs positive ends")
        points = int(m["points"]) if m["points"] else None
        if points is not None and points < 1:
            raise _usage(flag, text, "a grid needs at least one point")
        return Range(flag, low, high, log, points)
    entries = [e for e in text.split(",") if e.strip()]
    if not entries:
        raise _usage(flag, text, "no values")
    return Range(flag, choices=tuple(read(flag, e.strip()) for e in entries))


def listed(flag: str, text: str, item: Callable[[str, str], Any] | None = None, positive: bool = False
           ) -> list[Any]:
    """Every value of a list or a grid (what `specc compare` trains one variant for each of)."""
    r = parse(flag, text, item, positive)
    if not r.is_grid:
        raise _usage(flag, text, "compare trains a list of values; give a grid size (e.g. 1..1e-4:log:16)")
    return r.grid()


def fmt(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def product(ranges: Sequence[Range]) -> list[dict[str, Any]]:
    """Every combination of the ranges' grids (in order, the last varying fastest)."""
    combos: list[dict[str, Any]] = [{}]
    for r in ranges:
        combos = [{**c, r.flag: v} for c in combos for v in r.grid()]
    return combos
