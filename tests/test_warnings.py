"""Warnings: what is allowed but likely not meant. They come back from the API as data (located, in
source order) without raising, sit beside errors when there are errors, and render as `warning:`."""
from __future__ import annotations

import io
import json

import pytest
from helpers import ROOT
from rich.console import Console

import specc
from specc import layers
from specc.diagnostics import count, format_diagnostic, render
from specc.errors import Diagnostic, SpecError
from specc.source import Source, Span


def warnings_of(text: str) -> tuple[Diagnostic, ...]:
    return specc.check_text(text, "t.net").warnings


def diagnostics_of(text: str) -> tuple[Diagnostic, ...]:
    with pytest.raises(SpecError) as info:
        specc.check_text(text, "t.net")
    return info.value.diagnostics


# --- the channel ---------------------------------------------------------------------------------

def test_a_network_with_warnings_is_returned_with_them_located_and_in_source_order():
    text = ("block D(n, p) = Affine(n) -> BatchNorm(momentum=1)\ninput 784\n"
            "D(10, 1) -> BatchNorm(momentum=1) -> SoftmaxWithLoss")
    found = warnings_of(text)
    assert [(d.code, d.span.line, d.span.col) for d in found] == [
        ("unused-param", 1, 12), ("frozen-statistics", 1, 40), ("frozen-statistics", 3, 23)]
    assert all(d.severity == "warning" and not d.is_error for d in found)


def test_a_network_without_warnings_has_none():
    for model in sorted(ROOT.glob("models/*.net")):
        assert specc.check_file(model).warnings == (), model.name


def test_warnings_are_kept_beside_errors_and_counted_apart():
    found = diagnostics_of("block D(n, p) = Affine(n)\ninput 784\nD(10, 1) -> Afine(10) -> SoftmaxWithLoss")
    assert [(d.severity, d.code) for d in found] == [("warning", "unused-param"), ("error", "unknown-layer")]
    assert count(found) == "1 error and 1 warning"
    assert str(SpecError(found)) == "unknown layer 'Afine'"  # the message of an error is its errors


@pytest.mark.parametrize("severities, words", [
    (["error"], "1 error"), (["warning", "warning"], "2 warnings"),
    (["error", "error", "warning"], "2 errors and 1 warning"), (["warning", "error"], "1 error and 1 warning")])
def test_count_line(severities, words):
    assert count([Diagnostic("m", severity=s) for s in severities]) == words


def test_a_warning_renders_as_an_error_does_but_says_warning():
    source = Source("t.net", "BatchNorm(momentum=1)\n")
    d = Diagnostic("frozen", Span(1, 11, 1, 21), "frozen-statistics", hint="use 0.9", severity="warning")
    assert format_diagnostic(d, source, "t.net").plain == (
        "t.net:1:11: warning: frozen [frozen-statistics]\n"
        "1 | BatchNorm(momentum=1)\n"
        "  |           ^^^^^^^^^^\n"
        "  help: use 0.9\n")


def test_the_count_line_of_an_error_with_warnings():
    console = Console(file=io.StringIO(), width=100, color_system=None)
    render(SpecError([Diagnostic("a", severity="warning"), Diagnostic("b")], name="t.net"), console)
    assert console.file.getvalue().splitlines()[-1] == "1 error and 1 warning in t.net"


# --- BatchNorm(momentum=1) -------------------------------------------------------------------------

def test_momentum_one_freezes_the_running_statistics():
    (d,) = warnings_of("input 784\nAffine(10) -> BatchNorm(momentum=1) -> SoftmaxWithLoss")
    assert d.message == "momentum=1 never updates the running statistics; inference will use mean 0 and variance 1"
    assert d.span == Span(2, 25, 2, 35)


@pytest.mark.parametrize("momentum", ["0", "0.5", "0.9", "0.999"])
def test_other_momentums_are_fine(momentum):
    assert warnings_of(f"input 784\nAffine(10) -> BatchNorm(momentum={momentum}) -> SoftmaxWithLoss") == ()


def test_a_warning_in_a_json_ir_file_is_located_at_its_argument(tmp_path):
    doc = {"version": 1, "input": {"shape": [784]},
           "layers": [{"type": "BatchNorm", "args": {"momentum": 1, "eps": 1e-6}},
                      {"type": "SoftmaxWithLoss", "args": {}}]}
    path = tmp_path / "n.json"
    path.write_text(json.dumps(doc, indent=1), encoding="utf-8")
    (d,) = specc.check_file(path).warnings
    assert d.code == "frozen-statistics"
    line = path.read_text(encoding="utf-8").splitlines()[d.span.line - 1]
    assert '"momentum": 1' in line


# --- block parameters ------------------------------------------------------------------------------

def test_an_unused_block_parameter():
    (d,) = warnings_of("block D(n, p) = Affine(n)\ninput 784\nD(10, 3) -> SoftmaxWithLoss")
    assert (d.message, d.code, d.span) == ("block parameter 'p' is never used", "unused-param", Span(1, 12, 1, 13))


@pytest.mark.parametrize("text", [
    "block D(n, p=0.5) = Affine(n) -> Dropout(p)\ninput 784\nD(10) -> SoftmaxWithLoss",
    "block Inner(k) = Affine(k)\nblock Outer(n) = Inner(n) -> ReLU\ninput 784\nOuter(10) -> SoftmaxWithLoss",
    "block D(n, s) = (Affine(n, init=s) -> ReLU) * 2\ninput 784\nD(10, he) -> SoftmaxWithLoss",
])
def test_a_parameter_used_anywhere_in_the_body_is_used(text):
    assert warnings_of(text) == ()


@pytest.mark.parametrize("default, names", [("n", "the parameter 'n'"), ("m", "itself")])
def test_a_block_default_that_names_a_parameter_is_told_the_rule(default, names):
    (d,) = diagnostics_of(f"block D(n, m={default}) = Affine(n) -> Affine(m)\ninput 784\n"
                          "D(10) -> SoftmaxWithLoss")
    assert d.code == "default-names-param"
    assert d.message == f"the default of 'm' names {names}; a default is a constant and cannot refer to a parameter"
    assert d.span == Span(1, 14, 1, 15)
    assert d.hint == "write a constant (`m=10`), or drop the default and pass 'm' with each call of D"


def test_a_symbol_as_a_default_is_not_a_parameter():
    net = specc.check_text("block D(n, i=he) = Affine(n, init=i)\ninput 784\nD(10) -> SoftmaxWithLoss")
    assert net.layers[0].spec.args["init"] == "he"


# --- other frameworks' layer names ---------------------------------------------------------------------

@pytest.mark.parametrize("name, hint", [
    ("CrossEntropyLoss", "specc's cross-entropy loss is SoftmaxWithLoss (softmax and cross-entropy in one layer)"),
    ("cross_entropy", "specc's cross-entropy loss is SoftmaxWithLoss (softmax and cross-entropy in one layer)"),
    ("Softmax", "specc applies softmax in its loss layer: end the chain with SoftmaxWithLoss "
                "(softmax and cross-entropy in one layer)"),
    ("Dense", "specc's fully connected layer is Affine (or Linear)"),
    ("Conv2d", "specc's 2-D convolution is Convolution (or Conv), as in `Convolution(30, kernel=5)`"),
    ("MaxPool2d", "specc's max pooling is Pooling (or MaxPool), as in `Pooling(2, stride=2)`"),
    ("BatchNorm1d", "specc's BatchNorm works on vectors (per feature) and images (per channel) alike: "
                    "write BatchNorm"),
    ("PReLU", "specc has ReLU, LeakyReLU, Sigmoid and Tanh; the nearest is ReLU"),
    ("MSELoss", "specc's squared-error loss is MeanSquaredError (or MSE)"),
])
def test_a_name_from_another_framework_suggests_the_specc_layer(name, hint):
    (d,) = diagnostics_of(f"input 784\nAffine(10) -> {name}")
    assert (d.code, d.message, d.hint) == ("unknown-layer", f"unknown layer '{name}'", hint)


def test_a_block_may_take_a_foreign_name():
    assert specc.check_text("block Dense(n) = Affine(n) -> ReLU\ninput 784\nDense(10) -> SoftmaxWithLoss").layers


def test_a_json_ir_file_with_a_foreign_layer_type_gets_the_same_hint():
    doc = {"version": 1, "input": None, "layers": [{"type": "CrossEntropyLoss", "args": {}}]}
    with pytest.raises(SpecError) as info:
        specc.check_source(Source("n.json", json.dumps(doc)))
    assert info.value.diagnostics[0].hint.startswith("specc's cross-entropy loss is SoftmaxWithLoss")


def test_foreign_names_are_neither_specc_names_nor_claimed_twice():
    seen: dict[str, str] = {}
    specc_names = {layers.registry.foreign_key(n) for n in layers.names()}
    for cls in layers.REGISTRY.values():
        for foreign in cls.foreign_names:
            key = layers.registry.foreign_key(foreign)
            assert key not in specc_names, foreign
            assert seen.setdefault(key, cls.name) == cls.name, foreign
