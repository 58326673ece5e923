"""What a Trainer yields as it runs (it never prints): the run started, a step, an evaluation, a
warning, a stop; and a metrics record without its timings, to compare runs bit for bit."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from specc.errors import Diagnostic


@dataclass(frozen=True)
class Started:
    total: int  # iterations in the whole run
    per_epoch: int
    start: int  # the first iteration of this session (> 0 when resumed)


@dataclass(frozen=True)
class Step:
    iteration: int  # completed iterations
    loss: float


@dataclass(frozen=True)
class Evaluated:
    record: dict[str, Any]  # one line of metrics.jsonl
    best: bool  # the best test accuracy so far (best.npz written)


@dataclass(frozen=True)
class Warned:
    diagnostic: Diagnostic  # something likely wrong with the run; it goes on (severity "warning")


@dataclass(frozen=True)
class Stopped:
    iteration: int  # a checkpoint was written after this many iterations


def deterministic(record: Mapping[str, Any]) -> dict[str, Any]:
    """A metrics record without its timings: what must repeat bit for bit under the same seed."""
    return {k: v for k, v in record.items() if k not in ("elapsed_s", "eval_s", "samples_per_s")}
