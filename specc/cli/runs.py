"""The commands that run a network: gradcheck, eval, inspect, predict, bench, plan and report; each
calls the API and hands what it returns to a view (specc.cli.views, specc.cli.insideview)."""
from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.text import Text

from specc import api
from specc.cli import insideview, views
from specc.cli.output import working, write_json, write_text
from specc.diagnostics import render_diagnostics
from specc.errors import Diagnostic, UsageError
from specc.gradcheck import ABSOLUTE_TOLERANCE, RELATIVE_TOLERANCE, STEP, check_network
from specc.profile import profile
from specc.suggest import did_you_mean


def gradcheck(args, stdout: Console, stderr: Console) -> int:
    net = api.load(args.file, dtype="float64", fuse=not args.unfused, seed=args.seed)
    with working(stdout, f"checking {len(net.params)} parameters against central differences"):
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


def eval(args, stdout: Console, stderr: Console) -> int:
    if args.dtype == "float16":  # beside float32 and float64, so that the difference is seen
        with working(stdout, "evaluating in float16, float32 and float64"):
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


def inspect(args, stdout: Console, stderr: Console) -> int:
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


def predict(args, stdout: Console, stderr: Console) -> int:
    result = api.prediction(args.file, args.weights, args.images, invert=args.invert)
    render_diagnostics(result.warnings, None, None, stderr)
    probs = result.probabilities
    what = args.images[0] if len(args.images) == 1 else f"{len(args.images)} files"
    stdout.print(Text.assemble((what, "bold"), f": {len(probs):,} image{'s' * (len(probs) != 1)}"), soft_wrap=True)
    stdout.print(views.prediction_table(result, args.images, args.top, args.limit))
    if len(probs) > args.limit:
        stdout.print(f"... {len(probs) - args.limit:,} more (--limit N shows more)")
    return 0


def bench(args, stdout: Console, stderr: Console) -> int:
    source = api.read(args.file)
    checked = api.check_source(source)
    training = api.summary(checked).training
    optimizer = training["optimizer"] if training else "SGD"  # the spec's, as training would use it
    with working(stdout, f"timing {args.steps} steps"):
        p = profile(checked, source, batch=args.batch, steps=args.steps, dtype=args.dtype, optimizer=optimizer)
    # The title is two short lines above the table, not its title: rich would wrap that to the table's width.
    stdout.print(Text.assemble((f"{args.file}", "bold"), f": one training step (forward, backward, {optimizer} "
                               "update)"), soft_wrap=True)
    stdout.print(f"batch {p.batch}, {args.dtype}, mean of {p.steps} steps", soft_wrap=True, highlight=False)
    stdout.print(views.profile_table(p))
    stdout.print(f"a whole step without the timers: {p.step_ms:.3f} ms (median), "
                 f"{p.batch / p.step_ms * 1e3:,.0f} samples/s", soft_wrap=True, highlight=False)
    return 0


def plan(args, stdout: Console, stderr: Console) -> int:
    with working(stdout, "timing training steps"):
        p = api.scale_plan(args.file, workers=args.workers, links=args.link, batch=args.batch, dtype=args.dtype,
                           step_ms=args.step_ms, fixed_ms=args.fixed_ms)
    if args.json:
        write_json(stdout, p.to_json())
    else:
        stdout.print(views.scale_plan_table(p), soft_wrap=False)
    return 0


def report(args, stdout: Console, stderr: Console) -> int:
    from specc.report import render as render_html

    with working(stdout, "evaluating the run" + "s" * (len(args.runs) > 1)):
        runs = [api.run_report(folder) for folder in args.runs]
    out = Path(args.out) if args.out else (Path(args.runs[0]) / "report.html" if len(runs) == 1
                                           else Path("report.html"))
    write_text(out, render_html(runs))
    for r in runs:
        stdout.print(f"{r.folder}: test accuracy {r.evaluation.accuracy:.4f}, {len(r.records)} evaluations",
                     soft_wrap=True, highlight=False, markup=False)
    stdout.print(f"wrote {out} (open it in a browser: file://{out.resolve()})", soft_wrap=True, highlight=False,
                 markup=False)
    return 0

