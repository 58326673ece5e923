"""The command line: a thin shell that parses arguments, calls the API and renders through rich."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

import numpy as np
from rich.console import Console, JustifyMethod
from rich.table import Table
from rich.text import Text

from specc import __version__, api
from specc.bench import profile
from specc.check import CheckedNetwork
from specc.diagnostics import count, render, render_diagnostics
from specc.errors import Diagnostic, SpeccError, UsageError
from specc.gradcheck import ABSOLUTE_TOLERANCE, RELATIVE_TOLERANCE, STEP, check_network
from specc.graph import view as graph_view
from specc.graph.check import CheckedGraph
from specc.graph.evaluate import numeric_checks
from specc.memory import parse_size
from specc.schema import build_schema
from specc.source import Source
from specc.summary import table
from specc.text import shape_text
from specc.trainview import TrainView


def _parser(stdout: Console, stderr: Console) -> argparse.ArgumentParser:
    class Parser(argparse.ArgumentParser):
        """Usage, help and usage errors go to the consoles run() was given."""

        def _print_message(self, message: str, file=None) -> None:
            if message:
                console = stderr if file is None or file is sys.stderr else stdout
                console.file.write(message)
                console.file.flush()

    p = Parser(prog="specc", description="Compile, check and summarise neural networks "
                                "written as .net layer pipelines.")
    p.add_argument("--version", action="version", version=f"specc {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    c = sub.add_parser("check", help="parse, validate and infer shapes; print every error")
    c.add_argument("files", nargs="+", metavar="FILE", help=".net or IR .json files")

    c = sub.add_parser("summary", help="a table of layers, shapes, parameters and FLOPs")
    c.add_argument("file", metavar="FILE")
    c.add_argument("--json", action="store_true", help="print the figures as JSON")

    c = sub.add_parser("compile", help="print the IR (JSON) or the generated NumPy module of a network")
    c.add_argument("file", metavar="FILE")
    c.add_argument("--emit", choices=["json", "python"], default="json",
                   help="json: the IR document; python: a standalone module of the fused passes")

    c = sub.add_parser("gradcheck", help="backprop against numerical gradients, per parameter (float64)")
    c.add_argument("file", metavar="FILE")
    c.add_argument("--batch", type=_positive, default=8, help="samples in the random batch (default 8)")
    c.add_argument("--samples", type=_positive, default=40,
                   help="elements checked per parameter, chosen at random (default 40)")
    c.add_argument("--all", action="store_true", help="check every element (slow for big layers)")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--unfused", action="store_true", help="check the unfused reference path")

    c = sub.add_parser("train", help="train a network; progress, per-epoch metrics, checkpoints, curve")
    c.add_argument("file", metavar="FILE")
    c.add_argument("--data", metavar="D", help="a folder of IDX files, an .npz file, or mnist / fashion-mnist "
                   "(default: the embedded 5,000-digit MNIST sample)")
    length = c.add_mutually_exclusive_group()
    length.add_argument("--epochs", type=_positive, metavar="N")
    length.add_argument("--iters", type=_positive, metavar="N", help="training steps instead of epochs")
    c.add_argument("--batch", type=_positive, metavar="N")
    c.add_argument("--lr", type=_positive_float, metavar="X")
    c.add_argument("--optimizer", metavar="NAME", help="SGD, Momentum, Nesterov, AdaGrad, RMSprop or Adam")
    c.add_argument("--seed", type=_seed, metavar="N")
    c.add_argument("--dtype", choices=["float32", "float64"])
    c.add_argument("--out", metavar="DIR", help="run folder (default: a new folder under runs/)")
    c.add_argument("--resume", metavar="DIR", help="continue the run in DIR from its last checkpoint")
    c.add_argument("--init-from", metavar="W", help="start from the weights (and BatchNorm statistics) of a "
                   "checkpoint, e.g. one `specc import` wrote, with a fresh optimizer")
    c.add_argument("--max-memory", type=_size, metavar="SIZE",
                   help="refuse a network that would need more (e.g. 2G; default: half the machine's memory)")

    c = sub.add_parser("eval", help="loss, accuracy and confusion matrix of trained weights")
    c.add_argument("file", metavar="FILE")
    c.add_argument("--weights", required=True, metavar="W", help="weights.npz or best.npz of a run")
    c.add_argument("--data", metavar="D")
    c.add_argument("--split", choices=["test", "train"], default="test")

    c = sub.add_parser("predict", help="predicted classes, with probabilities, for images")
    c.add_argument("file", metavar="FILE")
    c.add_argument("--weights", required=True, metavar="W")
    c.add_argument("images", nargs="+", metavar="IMAGES", help=".npy, .npz, IDX, PGM or PNG files")
    c.add_argument("--invert", action="store_true",
                   help="dark digits on a light background: invert them (MNIST digits are white on black)")
    c.add_argument("--top", type=_positive, default=3, help="classes shown per image (default 3)")
    c.add_argument("--limit", type=_positive, default=20, help="images shown (default 20)")

    c = sub.add_parser("bench", help="where a training step's time goes, kernel by kernel")
    c.add_argument("file", metavar="FILE")
    c.add_argument("--batch", type=_positive, default=100)
    c.add_argument("--steps", type=_positive, default=50, help="timed steps (default 50)")
    c.add_argument("--dtype", choices=["float32", "float64"], default="float32")

    c = sub.add_parser("export", help="write the ONNX model of a network (needs specc[onnx])")
    c.add_argument("file", metavar="FILE")
    c.add_argument("--weights", metavar="W", help="a checkpoint (default: the seeded initial values)")
    c.add_argument("-o", "--out", required=True, metavar="OUT.onnx")

    c = sub.add_parser("import", help="turn an ONNX model into a .net file and a checkpoint (needs specc[onnx])")
    c.add_argument("model", metavar="MODEL.onnx")
    c.add_argument("-o", "--out", required=True, metavar="OUT.net")
    c.add_argument("--weights-out", metavar="W.npz", help="the checkpoint (default: OUT.npz beside OUT.net)")

    sub.add_parser("schema", help="print the JSON Schema of the IR")

    # computational graphs (specc.graph)
    c = sub.add_parser("grad", help="evaluate a computational graph forward and backward, node by node")
    c.add_argument("file", metavar="FILE")
    c.add_argument("--json", action="store_true", help="print the values and gradients as JSON")
    c.add_argument("--precise", action="store_true", help="full float64 precision (220.00000000000003)")
    c.add_argument("--no-check", action="store_true", help="skip the check against central differences")
    c = sub.add_parser("draw", help="draw a computational graph or a layer pipeline as SVG")
    c.add_argument("file", metavar="FILE")
    c.add_argument("-o", "--out", metavar="OUT.svg", help="where to write the SVG (default: FILE with .svg)")
    c = sub.add_parser("explain", help="a built-in layer's backward derived step by step from its expression")
    c.add_argument("name", metavar="LAYER", help="ReLU, LeakyReLU, Sigmoid, Tanh or Affine")
    c.add_argument("-o", "--out", metavar="OUT.svg", help="also draw its graph with the values as an SVG")
    c.add_argument("--precise", action="store_true", help="full float64 precision")
    return p


def run(argv: Sequence[str], stdout: Console, stderr: Console) -> int:
    """Run one command; return its exit code (0 ok, 1 a failed run, 2 a usage, spec or data error)."""
    try:
        args = _parser(stdout, stderr).parse_args(list(argv))
    except SystemExit as e:  # argparse has printed usage or help
        return int(e.code or 0)
    try:
        return _COMMANDS[args.command](args, stdout, stderr)
    except SpeccError as e:
        render(e, stderr)
        return e.exit_code


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
            api.check_training_memory(net, source)
        except SpeccError as e:
            render(e, stderr)
            status = max(status, e.exit_code)
            continue
        _warn(net, source, stderr)
        warned = f"; {count(net.warnings)}" if net.warnings else ""
        stdout.print(Text.assemble((f"{f}: ", "bold"), ("ok", "bold green"),
                                   f" ({len(net.layers)} layers, {net.parameter_count:,} parameters{warned})"),
                     soft_wrap=True)
    return status


def _warn(net: CheckedNetwork, source: Source | None, stderr: Console) -> None:
    """A network's warnings, on stderr, before the command goes on (warnings never change the exit code)."""
    render_diagnostics(net.warnings, source, source.name if source else None, stderr)


def _summary(args, stdout: Console, stderr: Console) -> int:
    source = api.read(args.file)
    checked = api.check_source(source)
    _warn(checked, source, stderr)
    s = api.summary(checked)
    if args.json:
        _write_json(stdout, s.to_json())
    else:
        stdout.print(table(s))
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
    report = check_network(net, batch=args.batch, seed=args.seed, limit=None if args.all else args.samples)
    stdout.print(_gradcheck_table(report.results, f"{args.file}: backprop vs central differences"))
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
        stdout.print(_gradcheck_table(report.culprit_results, "that layer alone, on the input it receives"))
    elif report.culprit:  # every layer's reference is right: the generated code is not
        stdout.print(Text(f"the generated code departs from the reference layers at {report.culprit}",
                          style="bold red"), soft_wrap=True)
    return 1


def _gradcheck_table(results, title: str) -> Table:
    t = Table(title=title, title_justify="left")
    columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("parameter", "left"), ("shape", "left"), ("checked", "right"),
        ("max abs error", "right"), ("relative error", "right"), ("result", "left"))
    for name, justify in columns:
        t.add_column(name, justify=justify, no_wrap=True)
    for r in results:
        t.add_row(r.name, shape_text(r.shape), f"{r.checked:,}", f"{r.max_abs:.2e}", f"{r.relative:.2e}",
                  Text("PASS", style="green") if r.passed else Text("FAIL", style="bold red"))
    return t


def _train(args, stdout: Console, stderr: Console) -> int:
    flags = {"epochs": args.epochs, "iters": args.iters, "batch": args.batch, "lr": args.lr,
             "optimizer": args.optimizer, "seed": args.seed, "dtype": args.dtype}
    trainer = api.training(args.file, out=args.out, resume=args.resume, data=args.data,
                           max_memory=args.max_memory, init_from=args.init_from, **flags)
    try:
        _warn(trainer.net.checked, trainer.net.source, stderr)
        return TrainView(trainer, args.file, stdout, stderr).run()
    finally:
        trainer.close()


def _eval(args, stdout: Console, stderr: Console) -> int:
    net, data, result = api.evaluation(args.file, args.weights, args.data, args.split)
    classes = net.loss_layer.out_shape[0]
    stdout.print(Text.assemble(("accuracy ", "bold"), (f"{result.accuracy:.4f}", "bold green"),
                               f"   loss {result.loss:.4f}   on {len(result.labels):,} {args.split} samples of "
                               f"{data.name} ({data.origin})"), soft_wrap=True)
    matrix = result.confusion(classes)
    t = Table(title="confusion matrix (rows: true class, columns: predicted)", title_justify="left")
    t.add_column("", justify="right", style="bold")
    for k in range(classes):
        t.add_column(str(k), justify="right")
    t.add_column("recall", justify="right")
    for k in range(classes):
        row = [Text(str(v), style="green" if j == k else ("red" if v else "dim")) for j, v in enumerate(matrix[k])]
        recall = matrix[k, k] / matrix[k].sum() if matrix[k].sum() else float("nan")
        t.add_row(str(k), *row, f"{recall:.3f}")
    stdout.print(t)
    return 0


def _predict(args, stdout: Console, stderr: Console) -> int:
    result = api.prediction(args.file, args.weights, args.images, invert=args.invert)
    render_diagnostics(result.warnings, None, None, stderr)
    probs = result.probabilities
    what = args.images[0] if len(args.images) == 1 else f"{len(args.images)} files"
    t = Table(title=f"{what}: {len(probs):,} image{'s' * (len(probs) != 1)}", title_justify="left")
    t.add_column("#", justify="right")
    if len(args.images) > 1:
        t.add_column("file")
    t.add_column("class", justify="right", style="bold")
    t.add_column("probability", justify="right")
    t.add_column(f"top {args.top}")
    files = [f for f, n in result.files for _ in range(n)]
    for i, p in enumerate(probs[:args.limit]):
        order = np.argsort(-p)[:args.top]
        t.add_row(str(i), *([files[i]] if len(args.images) > 1 else []), str(order[0]), f"{p[order[0]]:.4f}",
                  "  ".join(f"{k}: {p[k]:.3f}" for k in order))
    stdout.print(t)
    if len(probs) > args.limit:
        stdout.print(f"... {len(probs) - args.limit:,} more (--limit N shows more)")
    return 0


def _bench(args, stdout: Console, stderr: Console) -> int:
    source = api.read(args.file)
    p = profile(api.check_source(source), source, batch=args.batch, steps=args.steps, dtype=args.dtype)
    total = p.total_ms
    t = Table(title=f"{args.file}: one training step (forward, backward, SGD update), batch {p.batch}, "
              f"{args.dtype}, mean of {p.steps} steps", title_justify="left")
    for name in ("kernel", "layers", "forward ms", "backward ms", "total ms", "share"):
        t.add_column(name, justify="left" if name in ("kernel", "layers") else "right", no_wrap=True)
    for k in p.kernels:
        both = k.forward_ms + k.backward_ms
        t.add_row(f"{k.kernel} {k.name}", k.layers, f"{k.forward_ms:.3f}", f"{k.backward_ms:.3f}", f"{both:.3f}",
                  f"{both / total:.1%}")
    t.add_row("update", "", "", "", f"{p.update_ms:.3f}", f"{p.update_ms / total:.1%}")
    t.add_row(Text("sum", style="bold"), "", f"{sum(k.forward_ms for k in p.kernels):.3f}",
              f"{sum(k.backward_ms for k in p.kernels):.3f}", f"{total:.3f}", "100%")
    stdout.print(t)
    stdout.print(f"a whole step without the timers: {p.step_ms:.3f} ms (median), "
                 f"{p.batch / p.step_ms * 1e3:,.0f} samples/s", soft_wrap=True, highlight=False)
    return 0


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
    from specc.expr import view as explain_view
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


def _size(text: str) -> int:
    try:
        return parse_size(text)
    except SpeccError:
        raise argparse.ArgumentTypeError(f"not a memory size: {text} (write 512M, 2G or 1.5GiB)") from None


def _number(kind: type, low: float, high: float, what: str):
    """An argparse type: a number of `kind` from low to high (exclusive bounds where float)."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {what}, not {text}") from None
        if not low <= value <= high or (kind is float and value in (low, high)):
            raise argparse.ArgumentTypeError(f"must be {what}, not {text}")
        return value
    return parse


_positive = _number(int, 1, float("inf"), "a positive integer")
_positive_float = _number(float, 0.0, float("inf"), "a positive number")
_seed = _number(int, 0, 2**32 - 1, f"a whole number from 0 to {2**32 - 1}")


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


_COMMANDS = {"check": _check, "summary": _summary, "compile": _compile, "gradcheck": _gradcheck,
             "train": _train, "eval": _eval, "predict": _predict, "bench": _bench, "schema": _schema,
             "grad": _grad, "draw": _draw, "explain": _explain, "export": _export, "import": _import}


def main(argv: Sequence[str] | None = None) -> int:
    # Logs and pipes get 120 columns instead of rich's 80, so tables are not squeezed.
    stdout = Console(highlight=False, width=None if sys.stdout.isatty() else 120)
    stderr = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 120)
    try:
        return run(sys.argv[1:] if argv is None else argv, stdout, stderr)
    except KeyboardInterrupt:
        stderr.print("interrupted", style="bold red")
        return 1
    except BrokenPipeError:  # `specc schema | head` closing the pipe early is not an error
        return 0


if __name__ == "__main__":
    sys.exit(main())
