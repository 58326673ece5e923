"""The commands: each parses nothing and prints nothing itself but calls the API and hands what it
returns to a view (specc.cli.views); the exit code is 0 ok, 1 a failed run, 2 a usage, spec or data error."""
from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.text import Text

from specc import api
from specc.cli import insideview, training, views
from specc.diagnostics import count, render, render_diagnostics
from specc.errors import Diagnostic, SpeccError, UsageError
from specc.expr import view as explain_view
from specc.gradcheck import ABSOLUTE_TOLERANCE, RELATIVE_TOLERANCE, STEP, check_network
from specc.graph import view as graph_view
from specc.graph.check import CheckedGraph
from specc.graph.evaluate import numeric_checks
from specc.parse import parse
from specc.profile import profile
from specc.schema import build_schema
from specc.suggest import did_you_mean
from specc.tools import annotate, fmt, lint


def _check(args, stdout: Console, stderr: Console) -> int:
    status = 0
    for f in args.files:
        try:
            source = api.read(f)
            checked = api.check_any(source)
            if isinstance(checked, CheckedGraph):  # a computational graph: nothing to train
                render_diagnostics(checked.warnings, source, source.name, stderr)
                stdout.print(Text.assemble((f"{f}: ", "bold"), ("ok", "bold green"),
                                           f" ({graph_view.describe(checked)})"), soft_wrap=True)
                continue
            net = checked
            api.check_training_memory(net, source, args.max_memory)
        except SpeccError as e:
            render(e, stderr)
            status = max(status, e.exit_code)
            continue
        views.warn(net, source, stderr)
        if args.annotate and not source.name.endswith(".json"):
            annotate.render(source, parse(source), net, stdout)
        warned = f"; {count(net.warnings)}" if net.warnings else ""
        stdout.print(Text.assemble((f"{f}: ", "bold"), ("ok", "bold green"),
                                   f" ({len(net.layers)} layers, {net.parameter_count:,} parameters{warned})"),
                     soft_wrap=True)
    return status


def _summary(args, stdout: Console, stderr: Console) -> int:
    source = api.read(args.file)
    checked = api.check_source(source)
    views.warn(checked, source, stderr)
    s = api.summary(checked)
    if args.json:
        _write_json(stdout, s.to_json())
    else:
        stdout.print(views.summary_table(s))
    return 0


def _compile(args, stdout: Console, stderr: Console) -> int:
    source = api.read(args.file)
    if args.emit == "python":
        stdout.file.write(api.generated_code(source))
        stdout.file.flush()
    else:
        _write_json(stdout, api.ir_document(source))
    return 0


def _gradcheck(args, stdout: Console, stderr: Console) -> int:
    net = api.load(args.file, dtype="float64", fuse=not args.unfused, seed=args.seed)
    with _working(stdout, f"checking {len(net.params)} parameters against central differences"):
        report = check_network(net, batch=args.batch, seed=args.seed, limit=None if args.all else args.samples)
    stdout.print(views.gradcheck_table(report.results, f"{args.file}: backprop vs central differences"))
    if any(views.passes_on_absolute(r) for r in report.results):
        stdout.print("(abs): a gradient of about zero, whose relative error means nothing; it passes because its "
                     "absolute error is within the rounding noise of the differences", soft_wrap=True)
    tolerance = max((r.tolerance for r in report.results), default=ABSOLUTE_TOLERANCE)
    stdout.print(f"threshold: relative error <= {RELATIVE_TOLERANCE:g} or absolute error <= {tolerance:.1g} "
                 f"(the rounding noise of the differences); h = {STEP:g}, float64, batch {args.batch}, "
                 f"{'unfused' if args.unfused else 'fused'} path", soft_wrap=True)
    if report.passed:
        stdout.print(Text("all gradients agree", style="bold green"))
        return 0
    failed = sum(not r.passed for r in report.results)
    stdout.print(Text(f"{failed} of {len(report.results)} parameters disagree", style="bold red"))
    if report.culprit and report.culprit_results:
        stdout.print(Text(f"first layer whose backward disagrees: {report.culprit}", style="bold red"), soft_wrap=True)
        stdout.print(views.gradcheck_table(report.culprit_results, "that layer alone, on the input it receives"))
    elif report.culprit:  # every layer's reference is right: the generated code is not
        stdout.print(Text(f"the generated code departs from the reference layers at {report.culprit}",
                          style="bold red"), soft_wrap=True)
    return 1


def _eval(args, stdout: Console, stderr: Console) -> int:
    if args.dtype == "float16":  # beside float32 and float64, so that the difference is seen
        with _working(stdout, "evaluating in float16, float32 and float64"):
            data, rows = api.precisions(args.file, args.weights, args.data, args.split)
        result = rows[0].evaluation
        classes = api.check_file(args.file).loss.out_shape[0]
    else:
        net, data, result = api.evaluation(args.file, args.weights, args.data, args.split, args.dtype)
        classes = net.loss_layer.out_shape[0]
    stdout.print(Text.assemble(("accuracy ", "bold"), (f"{result.accuracy:.4f}", "bold green"),
                               f"   loss {result.loss:.4f}   on {len(result.labels):,} {args.split} samples of "
                               f"{data.name} ({data.origin}), {args.dtype}"), soft_wrap=True)
    if args.dtype == "float16":
        stdout.print(insideview.precision_table(rows))
    stdout.print(views.confusion_table(result.confusion(classes)))
    return 0


_VIEW_FLAGS = {"activations": {"weights", "init", "random", "data", "count", "seed", "out"},
               "filters": {"weights", "seed", "out"}, "misclassified": {"weights", "data", "count", "out"}}


def _inspect(args, stdout: Console, stderr: Console) -> int:
    if args.view not in _VIEW_FLAGS:
        hint = did_you_mean(args.view, list(_VIEW_FLAGS))
        raise UsageError([Diagnostic(f"unknown view '{args.view}'", None, "unknown-view",
                                     hint=(hint + " " if hint else "") + "The views: " + ", ".join(_VIEW_FLAGS))])
    given = [k for k in ("weights", "init", "random", "data", "count", "seed", "out") if getattr(args, k) is not None]
    stray = [k for k in given if k not in _VIEW_FLAGS[args.view]]
    if stray:
        flags = " and ".join(f"--{k}" for k in stray)
        takes = ", ".join(f"--{k}" for k in sorted(_VIEW_FLAGS[args.view]))
        raise UsageError([Diagnostic(f"{flags} {'is' if len(stray) == 1 else 'are'} not for the {args.view} view",
                                     None, "stray-flag", hint=f"inspect {args.view} takes {takes}")])
    seed = args.seed or 0
    if args.view == "activations":
        report = api.activation_histograms(args.file, init=args.init, weights=args.weights, random=args.random,
                                           data=args.data, count=args.count, seed=seed, out=args.out)
        stdout.print(Text.assemble((args.file, "bold"), f": activation layers on {report.inputs}"), soft_wrap=True)
        for caption, layers in report.rows:
            stdout.print(insideview.activations_table(caption, layers))
        stdout.print("saturated: where a layer passes (almost) no gradient back: Sigmoid below 0.01 or above 0.99, "
                     "Tanh beyond ±0.98, ReLU exactly 0", soft_wrap=True, markup=False)
        png = report.png
    elif args.view == "filters":
        filters = api.filter_images(args.file, weights=args.weights, seed=seed, out=args.out)
        stdout.print(insideview.filters_table(filters))
        png = filters.png
    else:
        if args.weights is None:
            raise UsageError([Diagnostic("inspect misclassified needs trained weights: --weights W", None,
                                         "no-weights", hint="e.g. --weights runs/NAME/weights.npz of a specc train")])
        wrong = api.misclassified_images(args.file, args.weights, data=args.data, count=args.count, out=args.out)
        m = wrong.found
        stdout.print(Text.assemble((args.file, "bold"), f" on {wrong.data}: {m.wrong:,} of {m.total:,} "
                                   f"misclassified (accuracy {m.accuracy:.4f})"), soft_wrap=True)
        stdout.print(insideview.misclassified_table(wrong))
        png = wrong.png
    stdout.print(f"wrote {png}" if png else "no picture: matplotlib is missing (pip install matplotlib)",
                 soft_wrap=True, markup=False)
    return 0


def _predict(args, stdout: Console, stderr: Console) -> int:
    result = api.prediction(args.file, args.weights, args.images, invert=args.invert)
    render_diagnostics(result.warnings, None, None, stderr)
    probs = result.probabilities
    what = args.images[0] if len(args.images) == 1 else f"{len(args.images)} files"
    stdout.print(Text.assemble((what, "bold"), f": {len(probs):,} image{'s' * (len(probs) != 1)}"), soft_wrap=True)
    stdout.print(views.prediction_table(result, args.images, args.top, args.limit))
    if len(probs) > args.limit:
        stdout.print(f"... {len(probs) - args.limit:,} more (--limit N shows more)")
    return 0


def _bench(args, stdout: Console, stderr: Console) -> int:
    source = api.read(args.file)
    checked = api.check_source(source)
    training = api.summary(checked).training
    optimizer = training["optimizer"] if training else "SGD"  # the spec's, as training would use it
    with _working(stdout, f"timing {args.steps} steps"):
        p = profile(checked, source, batch=args.batch, steps=args.steps, dtype=args.dtype, optimizer=optimizer)
    # The title is two short lines above the table, not its title: rich would wrap that to the table's width.
    stdout.print(Text.assemble((f"{args.file}", "bold"), f": one training step (forward, backward, {optimizer} "
                               "update)"), soft_wrap=True)
    stdout.print(f"batch {p.batch}, {args.dtype}, mean of {p.steps} steps", soft_wrap=True, highlight=False)
    stdout.print(views.profile_table(p))
    stdout.print(f"a whole step without the timers: {p.step_ms:.3f} ms (median), "
                 f"{p.batch / p.step_ms * 1e3:,.0f} samples/s", soft_wrap=True, highlight=False)
    return 0


def _plan(args, stdout: Console, stderr: Console) -> int:
    with _working(stdout, "timing training steps"):
        p = api.scale_plan(args.file, workers=args.workers, links=args.link, batch=args.batch, dtype=args.dtype,
                           step_ms=args.step_ms, fixed_ms=args.fixed_ms)
    if args.json:
        _write_json(stdout, p.to_json())
    else:
        stdout.print(views.scale_plan_table(p), soft_wrap=False)
    return 0


@contextmanager
def _working(console: Console, what: str) -> Iterator[None]:
    """A spinner with the time elapsed while long work runs, on a terminal only (a log gets nothing extra)."""
    if not console.is_terminal:
        yield
        return
    with Progress(SpinnerColumn(), TextColumn(what), TextColumn("elapsed"), TimeElapsedColumn(), console=console,
                  transient=True):
        yield


def _grad(args, stdout: Console, stderr: Console) -> int:
    source = api.read(args.file)
    ev = api.graph_evaluation(source)
    render_diagnostics(ev.checked.warnings, source, source.name, stderr)
    checks = None if args.no_check else numeric_checks(ev)
    if args.json:
        _write_json(stdout, graph_view.to_json(ev, checks, source))
    else:
        stdout.print(graph_view.backward_table(ev, source, args.precise))
        stdout.print(graph_view.gradients_table(ev, checks, args.precise))
    return 1 if checks is not None and not all(c.passed for c in checks) else 0


def _draw(args, stdout: Console, stderr: Console) -> int:
    source = api.read(args.file)
    drawing = api.drawing(source)
    render_diagnostics(drawing.warnings, source, source.name, stderr)
    out = Path(args.out) if args.out else Path(args.file).with_suffix(".svg")
    try:
        out.write_text(drawing.svg, encoding="utf-8")
    except OSError as e:
        raise UsageError([Diagnostic(f"cannot write '{out}': {e.strerror or e}", None, "unwritable")]) from None
    stdout.print(drawing.text, soft_wrap=True, markup=False)
    stdout.print(f"wrote {out}", soft_wrap=True, markup=False)
    return 0


def _explain(args, stdout: Console, stderr: Console) -> int:
    ex = api.explanation(args.name)
    for part in explain_view.renderables(ex, args.precise):
        stdout.print(part, soft_wrap=True, highlight=False)
    if args.out:
        out = Path(args.out)
        try:
            out.write_text(api.explanation_drawing(ex).svg, encoding="utf-8")
        except OSError as e:
            raise UsageError([Diagnostic(f"cannot write '{out}': {e.strerror or e}", None, "unwritable")]) from None
        stdout.print(f"wrote {out}", soft_wrap=True, markup=False)
    return 0 if ex.agreement <= 1e-12 and all(c.passed for c in ex.checks) else 1


def _report(args, stdout: Console, stderr: Console) -> int:
    from specc import report

    with _working(stdout, "evaluating the run" + "s" * (len(args.runs) > 1)):
        runs = [api.run_report(folder) for folder in args.runs]
    out = Path(args.out) if args.out else (Path(args.runs[0]) / "report.html" if len(runs) == 1
                                           else Path("report.html"))
    try:
        out.write_text(report.render(runs), encoding="utf-8")
    except OSError as e:
        raise UsageError([Diagnostic(f"cannot write '{out}': {e.strerror or e}", None, "unwritable")]) from None
    for r in runs:
        stdout.print(f"{r.folder}: test accuracy {r.evaluation.accuracy:.4f}, {len(r.records)} evaluations",
                     soft_wrap=True, highlight=False, markup=False)
    stdout.print(f"wrote {out} (open it in a browser: file://{out.resolve()})", soft_wrap=True, highlight=False,
                 markup=False)
    return 0


def _export(args, stdout: Console, stderr: Console) -> int:
    from specc.interop import OPSET
    from specc.interop.onnx_export import export

    result = export(args.file, args.out, args.weights)
    stdout.print(f"wrote {result.path}: ONNX opset {OPSET}, {result.nodes} nodes, from {args.file} "
                 f"({'weights of ' + args.weights if args.weights else 'initial values'}); "
                 f"input 'input', output '{result.output}'", soft_wrap=True)
    return 0


def _import(args, stdout: Console, stderr: Console) -> int:
    from specc.interop.onnx_import import imported

    result = imported(args.model, args.out, args.weights_out)
    stdout.print(f"wrote {result.spec_path} ({len(result.net.checked.layers)} layers, "
                 f"{result.net.checked.parameter_count:,} parameters) and {result.weights_path} from {args.model} "
                 f"({result.nodes} nodes):", soft_wrap=True)
    stdout.file.write(result.text)
    stdout.file.flush()
    return 0


def _schema(args, stdout: Console, stderr: Console) -> int:
    _write_json(stdout, build_schema())
    return 0


def _write_json(console: Console, doc) -> None:
    # Written as is, not through rich: the output is for programs and must be exact JSON.
    console.file.write(json.dumps(doc, indent=2) + "\n")
    console.file.flush()


def _fmt(args, stdout: Console, stderr: Console) -> int:
    status, changed = 0, []
    for f in args.files:
        try:
            source = api.read(f)
            formatted = fmt.format_source(source, annotate=args.annotate)
        except SpeccError as e:
            render(e, stderr)
            status = max(status, e.exit_code)
            continue
        if formatted == source.text:
            continue
        changed.append(f)
        if args.diff:
            stdout.file.write(fmt.diff(source, formatted))
        elif args.check:
            stdout.print(f"would reformat {f}", soft_wrap=True)
        else:
            with open(f, "w", encoding="utf-8", newline="") as out:
                out.write(formatted)
    done = len(args.files) - len(changed) - (status != 0)
    verb = "would be reformatted" if args.check or args.diff else "reformatted"
    stdout.print(f"{len(changed)} file{'s' * (len(changed) != 1)} {verb}, {max(done, 0)} unchanged", soft_wrap=True)
    return max(status, 1 if changed and (args.check or args.diff) else 0)


def _lsp(args, stdout: Console, stderr: Console) -> int:
    from specc.tools import lsp  # pygls is an optional extra: imported only here

    return lsp.serve()


def _lint(args, stdout: Console, stderr: Console) -> int:
    status = 0
    for f in args.files:
        try:
            source = api.read(f)
            net = lint.lint_source(source)
        except SpeccError as e:
            render(e, stderr)
            status = max(status, e.exit_code)
            continue
        render_diagnostics(net.warnings, source, source.name, stdout)
        status = max(status, 1 if net.warnings else 0)
    return status


COMMANDS = {"check": _check, "summary": _summary, "compile": _compile, "gradcheck": _gradcheck,
             "train": training.train, "compare": training.compare, "sweep": training.sweep,
             "eval": _eval, "inspect": _inspect, "predict": _predict, "bench": _bench, "plan": _plan, "schema": _schema,
             "grad": _grad, "draw": _draw, "report": _report, "explain": _explain, "export": _export, "import": _import,
             "fmt": _fmt, "lint": _lint, "lsp": _lsp}
