"""Memory a network needs, worked out from shapes before anything is allocated, and the budget
it must fit: a network that would not fit is refused with the figures and the layer to blame."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass

from specc.compiler import Plan
from specc.errors import Diagnostic, SpecError, UsageError
from specc.source import Source
from specc.text import human_bytes

_FRACTION = 0.5  # of the machine's memory, when no budget is given
_SIZES = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


@dataclass(frozen=True)
class Estimate:
    total: int  # bytes
    parameters: int  # values, gradients, optimizer state and BatchNorm statistics
    activations: int  # the workspace of one training batch (forward and backward buffers)
    per_layer: dict[int, int]  # layer index (0-based) -> bytes it accounts for


def machine_memory() -> int | None:
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def default_budget() -> int:
    """SPECC_MAX_MEMORY if set, else half the machine's memory (8 GiB if that cannot be read)."""
    if os.environ.get("SPECC_MAX_MEMORY"):
        return parse_size(os.environ["SPECC_MAX_MEMORY"])
    total = machine_memory()
    return int(total * _FRACTION) if total else 8 * 1024**3


def parse_size(text: str) -> int:
    """'2G', '512M', '1.5GiB' or a number of bytes."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*", text, re.IGNORECASE)
    if not m:
        raise UsageError([Diagnostic(f"not a memory size: {text!r}", None, "bad-size",
                                     hint="write it as 512M, 2G or 1.5GiB")])
    return int(float(m.group(1)) * _SIZES[m.group(2).upper()])


def estimate(plan: Plan, batch: int = 100, itemsize: int = 4, optimizer_slots: int = 2) -> Estimate:
    """Bytes for training at `batch`: every parameter with its gradient, optimizer slots and a
    scratch array, BatchNorm statistics, and the generated code's buffers for one batch."""
    per_layer: dict[int, int] = {}
    parameters = 0
    for slot in plan.params:
        b = slot.size * (3 + optimizer_slots) * itemsize
        per_layer[slot.layer] = per_layer.get(slot.layer, 0) + b
        parameters += b
    for slot in plan.state:
        per_layer[slot.layer] = per_layer.get(slot.layer, 0) + slot.size * itemsize
        parameters += slot.size * itemsize
    activations = 0
    for buffer in plan.buffers:
        b = buffer.nbytes(batch, itemsize)
        activations += b
        per_layer[buffer.layer] = per_layer.get(buffer.layer, 0) + b
    return Estimate(parameters + activations, parameters, activations, per_layer)


def forward_bytes_per_sample(plan: Plan, itemsize: int = 4) -> int:
    """Bytes of the buffers prediction uses, per sample (sizes evaluation chunks)."""
    return plan.workspace_bytes(1, itemsize, backward=False)


def enforce(plan: Plan, source: Source | None, budget: int | None = None,
            batch: int = 100, itemsize: int = 4, optimizer_slots: int = 2) -> Estimate:
    """Refuse (SpecError) a network whose estimate exceeds the budget, naming the hungriest layer."""
    budget = default_budget() if budget is None else budget
    net = plan.network
    e = estimate(plan, batch, itemsize, optimizer_slots)
    if e.total <= budget:
        return e
    worst = max(e.per_layer, key=lambda i: e.per_layer[i])
    c = net.layers[worst]
    raise SpecError([Diagnostic(
        f"training this network would need {human_bytes(e.total)} (parameters, gradients and optimizer state "
        f"{human_bytes(e.parameters)}; buffers for a batch of {batch} {human_bytes(e.activations)}), more than the "
        f"budget of {human_bytes(budget)}", c.spec.span, "too-much-memory",
        f"{c.layer.describe()} needs {human_bytes(e.per_layer[worst])}",
        "make this layer smaller or the batch smaller, or raise the budget with --max-memory "
        "(or SPECC_MAX_MEMORY)")], source)
