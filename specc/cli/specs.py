"""The commands on spec files themselves: check, summary, compile, schema, fmt, lint, lsp, and the
ONNX export and import; each calls the API and hands what it returns to a view or writes it out."""
from __future__ import annotations

from rich.console import Console
from rich.text import Text

from specc import api
from specc.cli import views
from specc.cli.output import write_json
from specc.diagnostics import count, render, render_diagnostics
from specc.errors import SpeccError
from specc.graph import view as graph_view
from specc.graph.check import CheckedGraph
from specc.parse import parse
from specc.schema import build_schema
from specc.tools import annotate
from specc.tools.fmt import diff, format_source
from specc.tools.lint import lint_source


def check(args, stdout: Console, stderr: Console) -> int:
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


def summary(args, stdout: Console, stderr: Console) -> int:
    source = api.read(args.file)
    checked = api.check_source(source)
    views.warn(checked, source, stderr)
    s = api.summary(checked)
    if args.json:
        write_json(stdout, s.to_json())
    else:
        stdout.print(views.summary_table(s))
    return 0


def compile(args, stdout: Console, stderr: Console) -> int:
    source = api.read(args.file)
    if args.emit == "python":
        stdout.file.write(api.generated_code(source))
        stdout.file.flush()
    else:
        write_json(stdout, api.ir_document(source))
    return 0



def schema(args, stdout: Console, stderr: Console) -> int:
    write_json(stdout, build_schema())
    return 0


def fmt(args, stdout: Console, stderr: Console) -> int:
    status, changed = 0, []
    for f in args.files:
        try:
            source = api.read(f)
            formatted = format_source(source, annotate=args.annotate)
        except SpeccError as e:
            render(e, stderr)
            status = max(status, e.exit_code)
            continue
        if formatted == source.text:
            continue
        changed.append(f)
        if args.diff:
            stdout.file.write(diff(source, formatted))
        elif args.check:
            stdout.print(f"would reformat {f}", soft_wrap=True)
        else:
            with open(f, "w", encoding="utf-8", newline="") as out:
                out.write(formatted)
    done = len(args.files) - len(changed) - (status != 0)
    verb = "would be reformatted" if args.check or args.diff else "reformatted"
    stdout.print(f"{len(changed)} file{'s' * (len(changed) != 1)} {verb}, {max(done, 0)} unchanged", soft_wrap=True)
    return max(status, 1 if changed and (args.check or args.diff) else 0)


def lsp(args, stdout: Console, stderr: Console) -> int:
    from specc.tools import lsp  # pygls is an optional extra: imported only here

    return lsp.serve()


def lint(args, stdout: Console, stderr: Console) -> int:
    status = 0
    for f in args.files:
        try:
            source = api.read(f)
            net = lint_source(source)
        except SpeccError as e:
            render(e, stderr)
            status = max(status, e.exit_code)
            continue
        render_diagnostics(net.warnings, source, source.name, stdout)
        status = max(status, 1 if net.warnings else 0)
    return status


def export(args, stdout: Console, stderr: Console) -> int:
    from specc.interop import OPSET
    from specc.interop.onnx_export import export as to_onnx

    result = to_onnx(args.file, args.out, args.weights)
    stdout.print(f"wrote {result.path}: ONNX opset {OPSET}, {result.nodes} nodes, from {args.file} "
                 f"({'weights of ' + args.weights if args.weights else 'initial values'}); "
                 f"input 'input', output '{result.output}'", soft_wrap=True)
    return 0


def import_(args, stdout: Console, stderr: Console) -> int:
    from specc.interop.onnx_import import imported

    result = imported(args.model, args.out, args.weights_out)
    stdout.print(f"wrote {result.spec_path} ({len(result.net.checked.layers)} layers, "
                 f"{result.net.checked.parameter_count:,} parameters) and {result.weights_path} from {args.model} "
                 f"({result.nodes} nodes):", soft_wrap=True)
    stdout.file.write(result.text)
    stdout.file.flush()
    return 0
