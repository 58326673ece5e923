"""The report of a run: what `specc report` shows of a run folder that `specc train` wrote, read
and evaluated here (specc.report renders it)."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np

from specc.api.front import check_source, read, summary
from specc.api.runs import saved_config, trained
from specc.errors import Diagnostic, UsageError
from specc.graph.draw import draw_pipeline
from specc.summary import Summary
from specc.training import data as data_mod
from specc.training.evaluate import Evaluation, check_fit, evaluate


@dataclasses.dataclass(frozen=True)
class RunReport:
    """What `specc report` shows of a run folder: its spec, figures, drawing, curves and how its final
    weights do on the test set (the confusion matrix and the misclassified samples)."""

    folder: Path
    spec_name: str  # model.net or model.json
    spec_text: str
    summary: Summary
    drawing_svg: str
    records: list[dict[str, Any]]  # metrics.jsonl
    config: dict[str, Any]  # config.json
    evaluation: Evaluation  # of weights.npz on the test split
    classes: int
    misclassified: np.ndarray  # indices into the test split, at most `misclassified_limit`
    test_images: np.ndarray  # the test samples at those indices, as stored (uint8 for MNIST)
    versions: dict[str, str]


def run_report(folder: str | Path, misclassified_limit: int = 48) -> RunReport:
    """Read a run folder that `specc train` wrote and evaluate its last checkpoint on its test set."""
    import platform

    from specc import __version__

    folder = Path(folder)
    if not (folder / "config.json").is_file():
        hint = ("pass the run folder, not a file in it" if folder.is_file() else
                "a run folder is the --out of `specc train` (runs/NAME-DATE-TIME by default)")
        raise UsageError([Diagnostic(f"'{folder}' is not a run folder (no config.json in it)", None, "no-run",
                                     hint=hint)])
    spec = next((folder / n for n in ("model.net", "model.json") if (folder / n).is_file()), None)
    if spec is None or not (folder / "weights.npz").is_file():
        raise UsageError([Diagnostic(f"'{folder}' holds no {'spec' if spec is None else 'weights.npz'}", None,
                                     "no-run", hint="the run stopped before its first checkpoint; train it again")])
    config = saved_config(folder)
    records = []
    for line in (folder / "metrics.jsonl").read_text(encoding="utf-8").splitlines() \
            if (folder / "metrics.jsonl").is_file() else []:
        try:
            records.append(json.loads(line))
        except ValueError:
            continue  # a line cut short by a kill
    source = read(spec)
    checked = check_source(source)
    figures = summary(checked)
    net = trained(spec, folder / "weights.npz")
    dataset = data_mod.load(config.get("data", {}).get("origin"))
    check_fit(net, dataset)
    batches = data_mod.Batches(dataset.x_test, dataset.scale(), net.dtype, net.input_shape)
    result = evaluate(net, batches, dataset.t_test)
    wrong = np.flatnonzero(result.predicted != result.labels)[:misclassified_limit]
    versions = {"specc": __version__, "python": platform.python_version(), "numpy": np.__version__,
                "platform": platform.platform(terse=True)}
    return RunReport(folder, spec.name, source.text, figures, draw_pipeline(figures, spec.name).svg, records, config,
                     result, int(net.loss_layer.out_shape[0]), wrong, dataset.x_test[wrong], versions)
