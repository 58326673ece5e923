"""specc lint: every rule has a golden pair (a file that triggers it, one that does not); models are clean."""
from __future__ import annotations

import io

import pytest
from helpers import ROOT
from rich.console import Console

from specc import cli
from specc.source import Source
from specc.tools.lint import RULES, lint_source

GOLDEN = ROOT / "tests" / "golden"


def _run(*args: str) -> tuple[int, str, str]:
    out, err = (Console(file=io.StringIO(), width=100, color_system=None) for _ in range(2))
    code = cli.run(list(args), out, err)
    return code, out.file.getvalue(), err.file.getvalue()


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.code)
def test_each_rule_has_a_golden_pair(rule):
    stem = "lint_" + rule.code.replace("-", "_")
    triggered = (GOLDEN / f"{stem}.snap").read_text(encoding="utf-8")
    assert f"[{rule.code}]" in triggered and "exit: 1" in triggered
    quiet = (GOLDEN / f"{stem}_ok.snap").read_text(encoding="utf-8")
    assert quiet == f"args: lint {stem}_ok.net\nexit: 0\n--- stdout\n--- stderr\n"


def test_rules_have_distinct_codes_and_are_in_the_readme():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len({r.code for r in RULES}) == len(RULES)
    for r in RULES:
        assert f"| `{r.code}` |" in readme, r.code


def test_models_have_nothing_to_say():
    assert _run("lint", *sorted(str(p) for p in (ROOT / "models").glob("*.net"))) == (0, "", "")


def test_check_warnings_come_through_the_same_channel():
    net = lint_source(Source("a.net", "block D(n, p=1) = Affine(n)\ninput 8\nD(4) -> ReLU -> Sigmoid -> Affine(2) -> "
                                      "SoftmaxWithLoss\n"))
    assert [d.code for d in net.warnings] == ["unused-param", "double-activation"]
    assert all(d.severity == "warning" and d.span is not None and d.hint for d in net.warnings)


@pytest.mark.parametrize("text", [
    "input 8\nAffine(4) -> ReLU -> Sigmoid -> Affine(2) -> SoftmaxWithLoss  # specc: ignore[double-activation]\n",
    "input 8\n# specc: ignore[inferable-in, double-activation] (on purpose)\n"
    "Affine(4) -> ReLU -> Sigmoid -> Affine(2) -> SoftmaxWithLoss\n",
])
def test_a_comment_silences_a_rule(text):
    assert lint_source(Source("a.net", text)).warnings == ()


def test_a_comment_silences_only_its_code_and_its_line():
    text = "input 8\n# specc: ignore[lr-range]\n\nAffine(4) -> ReLU -> Sigmoid -> Affine(2) -> SoftmaxWithLoss\n"
    assert [d.code for d in lint_source(Source("a.net", text)).warnings] == ["double-activation"]


def test_lint_refuses_a_file_with_errors():
    f = GOLDEN / "unknown_layer.net"
    code, out, err = _run("lint", str(f))
    assert code == 2 and out == "" and "unknown layer" in err
