"""The command line: a thin shell that parses arguments, calls the API and renders through rich."""
from __future__ import annotations

import argparse
import json
import sys
from typing import Sequence

from rich.console import Console
from rich.table import Table
from rich.text import Text

from specc import __version__, api
from specc.diagnostics import render
from specc.errors import SpeccError
from specc.gradcheck import ABSOLUTE_TOLERANCE, RELATIVE_TOLERANCE, STEP, check_network
from specc.schema import build_schema
from specc.summary import table


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="specc", description="Compile, check and summarise neural networks "
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

    sub.add_parser("schema", help="print the JSON Schema of the IR")
    return p


def run(argv: Sequence[str], stdout: Console, stderr: Console) -> int:
    """Run one command; return its exit code (0 ok, 1 a failed run, 2 a usage, spec or data error)."""
    try:
        args = _parser().parse_args(list(argv))
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
            net = api.check_file(f)
        except SpeccError as e:
            render(e, stderr)
            status = max(status, e.exit_code)
            continue
        stdout.print(Text.assemble((f"{f}: ", "bold"), ("ok", "bold green"),
                                   f" ({len(net.layers)} layers, {net.parameter_count:,} parameters)"),
                     soft_wrap=True)
    return status


def _summary(args, stdout: Console, stderr: Console) -> int:
    s = api.summary(api.check_file(args.file))
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
    stdout.print(f"threshold: relative error <= {RELATIVE_TOLERANCE:g} or absolute error <= {ABSOLUTE_TOLERANCE:g}; "
                 f"h = {STEP:g}, float64, batch {args.batch}, {'unfused' if args.unfused else 'fused'} path",
                 soft_wrap=True)
    if report.passed:
        stdout.print(Text("all gradients agree", style="bold green"))
        return 0
    failed = sum(not r.passed for r in report.results)
    stdout.print(Text(f"{failed} of {len(report.results)} parameters disagree", style="bold red"))
    if report.culprit:
        stdout.print(Text(f"first layer whose backward disagrees: {report.culprit}", style="bold red"), soft_wrap=True)
        stdout.print(_gradcheck_table(report.culprit_results, "that layer alone, on the input it receives"))
    return 1


def _gradcheck_table(results, title: str) -> Table:
    t = Table(title=title, title_justify="left")
    for name, justify in (("parameter", "left"), ("shape", "left"), ("checked", "right"),
                          ("max abs error", "right"), ("relative error", "right"), ("result", "left")):
        t.add_column(name, justify=justify, no_wrap=True)
    for r in results:
        t.add_row(r.name, "x".join(map(str, r.shape)), f"{r.checked:,}", f"{r.max_abs:.2e}", f"{r.relative:.2e}",
                  Text("PASS", style="green") if r.passed else Text("FAIL", style="bold red"))
    return t


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {text}")
    return value


def _schema(args, stdout: Console, stderr: Console) -> int:
    _write_json(stdout, build_schema())
    return 0


def _write_json(console: Console, doc) -> None:
    # Written as is, not through rich: the output is for programs and must be exact JSON.
    console.file.write(json.dumps(doc, indent=2) + "\n")
    console.file.flush()


_COMMANDS = {"check": _check, "summary": _summary, "compile": _compile, "gradcheck": _gradcheck,
             "schema": _schema}


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
