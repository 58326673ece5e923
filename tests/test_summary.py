"""Summary: the figures of a checked network (parameters, FLOPs, memory), computed from shapes,
checked against counts done by hand from the README's rules."""
from __future__ import annotations

import io
import json

import pytest
from helpers import new_console
from rich.console import Console
from spec_examples import NETWORKS

import specc
from specc import cli
from specc.cli.views import summary_table as table
from specc.text import human_bytes


def summary_of(text: str) -> specc.Summary:
    return specc.summary(specc.check_text(text, "t.net"))


def test_two_layer_net():
    s = summary_of(NETWORKS["two_layer"])
    assert s.params == 39_760
    assert [r.params for r in s.rows] == [784 * 50 + 50, 0, 50 * 10 + 10, 0]
    assert [r.flops for r in s.rows] == [2 * 784 * 50, 50, 2 * 50 * 10, 5 * 10]
    assert s.flops == 79_500
    assert s.param_bytes == 39_760 * 4
    assert s.activation_bytes == (784 + 50 + 50 + 10 + 10) * 4
    assert s.buffers == 0
    assert [r.layer for r in s.rows] == ["Affine(784, 50)", "ReLU", "Affine(50, 10)", "SoftmaxWithLoss"]
    assert [r.line for r in s.rows] == [2, 2, 2, 2]
    assert [r.output for r in s.rows] == [[50], [50], [10], [10]]


def test_simple_conv_net():
    s = summary_of(NETWORKS["conv"])
    assert s.input == [1, 28, 28]
    assert s.params == 433_890
    assert [r.params for r in s.rows] == [30 * 1 * 5 * 5 + 30, 0, 0, 4320 * 100 + 100, 0, 100 * 10 + 10, 0]
    assert [r.flops for r in s.rows] == [
        2 * 1 * 5 * 5 * 30 * 24 * 24,  # convolution: 2*C*k*k*filters*OH*OW
        30 * 24 * 24,  # ReLU
        30 * 12 * 12 * 2 * 2,  # pooling: one compare per window element
        2 * 4320 * 100, 100, 2 * 100 * 10, 5 * 10]
    assert s.flops == 1_764_710
    assert s.activation_bytes == (784 + 2 * 17_280 + 4320 + 100 + 100 + 10 + 10) * 4
    assert [r.layer for r in s.rows][:3] == ["Convolution(30, kernel=5)", "ReLU", "Pooling(2)"]
    assert [r.line for r in s.rows] == [3, 3, 3, 4, 4, 4, 4]


def test_multi_layer_net_with_blocks():
    s = summary_of(NETWORKS["blocks_readme"])
    assert s.params == 100_310
    assert s.buffers == 600  # BatchNorm's running mean and variance, 3 x 2 x 100
    assert s.flops == 201_550
    assert s.rows[1].flops == 7 * 100  # BatchNorm, 7 per element
    assert s.rows[3].flops == 100  # Dropout, 1 per element
    assert s.rows[3].layer == "Dropout(0.1)"
    assert [r.via for r in s.rows[:5]] == ["Dense 1/3 (line 4)"] * 4 + ["Dense 2/3 (line 4)"]
    assert s.rows[-1].via == ""


@pytest.mark.parametrize("layer, flops", [
    ("Sigmoid", 4 * 20), ("Tanh", 4 * 20), ("ReLU", 20), ("Dropout", 20), ("BatchNorm", 7 * 20),
    ("Flatten", 0),
])
def test_element_wise_flops(layer, flops):
    s = summary_of(f"input 20\n{layer} -> Affine(3) -> MeanSquaredError")
    assert s.rows[0].flops == flops
    assert s.rows[-1].flops == 3 * 3  # MSE: 3 per element


def test_a_network_of_many_kinds_of_layer_is_summarised():
    text = ("input 2x8x8\nConvolution(4, kernel=3) -> BatchNorm -> ReLU -> Pooling -> Dropout -> Flatten"
            " -> Affine(16) -> Sigmoid -> Tanh -> Affine(3) -> SoftmaxWithLoss")
    s = summary_of(text)
    # (each registered layer's own row is checked by the layer battery, tests/test_layers.py)
    assert s.params == (4 * 2 * 9 + 4) + 2 * 4 + (36 * 16 + 16) + (16 * 3 + 3)


@pytest.mark.parametrize("n, text", [
    (0, "0 B"), (1023, "1,023 B"), (1024, "1.0 KiB"), (3616, "3.5 KiB"), (1_735_560, "1.7 MiB"),
    (5 * 1024 ** 3, "5.0 GiB"), (3 * 1024 ** 4, "3.0 TiB"),
])
def test_human_bytes(n, text):
    assert human_bytes(n) == text


def test_to_json_is_plain_data():
    s = summary_of(NETWORKS["conv"])
    doc = s.to_json()
    assert json.loads(json.dumps(doc)) == doc
    assert doc["params"] == 433_890 and doc["flops"] == 1_764_710
    expected = {"index": 1, "layer": "Convolution(30, kernel=5)", "line": 3, "col": 1, "via": "",
                "output": [30, 24, 24], "params": 780, "flops": 864_000}
    assert {k: doc["rows"][0][k] for k in expected} == expected


def _console() -> Console:
    return new_console(100)


@pytest.mark.parametrize("name, params, flops", [
    ("two_layer_net", 39_760, 79_500), ("simple_conv_net", 433_890, 1_764_710),
    ("multi_layer_net", 100_310, 201_550),
])
def test_summary_json_command(models_dir, name, params, flops):
    out, err = _console(), _console()
    path = str(models_dir / f"{name}.net")
    assert cli.run(["summary", path, "--json"], out, err) == 0
    doc = json.loads(out.file.getvalue())
    assert doc["params"] == params and doc["flops"] == flops
    assert doc == specc.summary(specc.check_file(path)).to_json()
    assert err.file.getvalue() == ""


def _table_lines(text: str, width: int) -> list[str]:
    console = Console(file=io.StringIO(), width=width, color_system=None, force_terminal=False)
    console.print(table(summary_of(text)))
    return [line.rstrip() for line in console.file.getvalue().splitlines()]


@pytest.mark.parametrize("width", [120, 200])
def test_table_totals_are_whole_lines_below_the_table(width):
    # Regression: the totals were the table's caption, wrapped mid-phrase to the table's width.
    assert _table_lines(NETWORKS["two_layer"], width)[-4:] == [
        "parameters 39,760 (155.3 KiB at float32)",
        "forward 79,500 FLOPs per sample; activations 3.5 KiB per sample in training",
        "training memory 537.0 KiB (batch 100, SGD, float32): weights and optimizer 465.9 KiB, buffers 71.1 KiB",
        "fused: Affine+ReLU (layers 1-2)",
    ]


def test_table_never_cuts_numbers_on_a_narrow_console():
    # Regression: with a kernel-name column the table was wider than 100 columns and rich cut
    # "156,800" to "156,8…"; now only the via column wraps.
    lines = _table_lines(NETWORKS["blocks_readme"], 100)
    assert not any("\u2026" in line for line in lines)
    assert "FLOPs/sample" in lines[2]
    assert "156,800" in lines[4]
    assert max(map(len, lines)) <= 100


def test_fused_kernels_are_named():
    lines = _table_lines(NETWORKS["conv"], 120)
    assert lines[-1] == "fused: Convolution+ReLU+Pooling (layers 1-3), Affine+ReLU (layers 4-5)"
    assert _table_lines(NETWORKS["blocks"], 120)[-1] == "fused: BatchNorm+ReLU (layers 2-3, 6-7, 10-11)"
