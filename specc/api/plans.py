"""Plans on paper: what data-parallel training of a network would gain on N workers (`specc plan`)."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from specc import scaling
from specc.api.front import check_source, read, summary
from specc.errors import Diagnostic, UsageError
from specc.profile import profile
from specc.source import Source
from specc.training.settings import resolve as resolve_settings


def scale_plan(path: str | Path | Source, *, workers: Sequence[int] = scaling.DEFAULT_WORKERS,
               links: Sequence[scaling.Link] = scaling.DEFAULT_LINKS, batch: int | None = None,
               dtype: str | None = None, step_ms: float | None = None, fixed_ms: float | None = None,
               steps: int = 20) -> scaling.ScalePlan:
    """The expected speedup of data-parallel training on each number of workers and link (specc.scaling),
    for the spec's batch and dtype (or these). The single-process step is measured here (the median of
    `steps` timed steps of a random batch, with the spec's optimizer) unless `step_ms` gives it; its
    `fixed_ms`, the part that does not shrink with the batch, from a second step measured at a quarter
    of the batch (0 when only `step_ms` is given); of that, the update measured apart, which the workers
    of a network of scaling.SHARD_FROM parameters or more divide."""
    source = path if isinstance(path, Source) else read(path)
    checked = check_source(source)
    settings = resolve_settings(checked.network.train, {"batch": batch, "dtype": dtype})
    update_ms = 0.0  # the optimizer's update, which a sharded network's workers divide (specc.scaling)
    if step_ms is None:
        def step_at(batch: int) -> tuple[float, float]:
            p = profile(checked, source, batch=batch, steps=steps, dtype=settings.dtype,
                        optimizer=settings.optimizer)
            return p.step_ms, p.update_ms
        (step_ms, update_ms), measured = step_at(settings.batch), True
        if fixed_ms is None:
            small = max(1, settings.batch // 4)
            # (no less than the update, which no batch size shrinks: a small batch can run faster per
            # sample, DeepConvNet's whose Winograd chunks stay in cache, and put the intercept below it)
            fixed_ms = max(scaling.fixed_part(settings.batch, step_ms, small, step_at(small)[0]), update_ms)
    else:
        measured = False
    fixed_ms = fixed_ms or 0.0
    if fixed_ms >= step_ms:
        raise UsageError([Diagnostic(f"the fixed part ({fixed_ms:g} ms) must be a part of the step ({step_ms:g} ms)",
                                     None, "bad-flag", hint="give --fixed-ms less than --step-ms")])
    s = summary(checked)
    return scaling.plan(s.params, s.flops, 8 if settings.dtype == "float64" else 4, settings.batch, step_ms,
                        fixed_ms, measured, workers, links, source.name, update_ms)
