"""The table of commands, name -> function: each parses nothing and prints nothing itself but calls the API
and hands what it returns to a view (specc.cli.views); the exit code is 0 ok, 1 a failed run, 2 a usage,
spec or data error."""
from __future__ import annotations

from typing import Callable

from specc.cli import graphs, runs, specs, training

Command = Callable[..., int]  # (args, stdout: Console, stderr: Console) -> exit code

COMMANDS: dict[str, Command] = {
    "check": specs.check, "summary": specs.summary, "compile": specs.compile, "gradcheck": runs.gradcheck,
    "train": training.train, "compare": training.compare, "sweep": training.sweep,
    "eval": runs.eval, "inspect": runs.inspect, "predict": runs.predict, "bench": runs.bench, "plan": runs.plan,
    "schema": specs.schema, "grad": graphs.grad, "draw": graphs.draw, "report": runs.report,
    "explain": graphs.explain, "export": specs.export, "import": specs.import_,
    "fmt": specs.fmt, "lint": specs.lint, "lsp": specs.lsp}
