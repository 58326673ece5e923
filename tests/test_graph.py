"""Computational graphs: the chapter's numbers exactly (the book's code and hand-worked values are the
oracle), derivatives against central differences, the drawings' SVG, and graph files among the models."""
from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from helpers import ROOT
from rich.console import Console

from specc import api, cli
from specc.errors import SpecError
from specc.graph.evaluate import numeric_checks

GRAPHS = ROOT / "models" / "graphs"
SVG = "{http://www.w3.org/2000/svg}"


def evaluation(name: str):
    return api.graph_evaluation(api.read(GRAPHS / name))


def run(*args: str) -> tuple[int, str, str]:
    out, err = (Console(file=io.StringIO(), width=200, color_system=None) for _ in range(2))
    code = cli.run(list(args), out, err)
    return code, out.file.getvalue(), err.file.getvalue()


def test_chain_rule_gives_2_x_plus_y():
    ev = evaluation("chain_rule.net")
    x, y = 3.0, 2.0
    assert float(ev.output) == (x + y) ** 2
    assert float(ev.gradients["x"]) == 2 * (x + y) == float(ev.gradients["y"])


def test_apple_is_the_books_numbers_exactly():
    ev = evaluation("apple.net")
    assert repr(float(ev.output)) == "220.00000000000003"
    assert [float(ev.gradients[k]) for k in ("apple", "apple_num", "tax")] == [2.2, 110.00000000000001, 200.0]


def test_apple_orange_is_the_books_numbers_exactly():
    ev = evaluation("apple_orange.net")
    assert repr(float(ev.output)) == "715.0000000000001"
    got = {k: float(v) for k, v in ev.gradients.items()}
    assert got == {"apple": 2.2, "apple_num": 110.00000000000001, "orange": 3.3000000000000003,
                   "orange_num": 165.0, "tax": 650.0}


def test_sigmoid_graph_gives_y_times_one_minus_y():
    ev = evaluation("sigmoid.net")
    y = float(ev.output)
    assert y == pytest.approx(1 / (1 + np.exp(-0.5)), rel=1e-15)
    assert float(ev.gradients["x"]) == pytest.approx(y * (1 - y), rel=1e-15)
    ops = [s.node.op for s in ev.steps]
    assert ops == ["div", "add", "exp", "mul"]  # the book's four steps, backward


def test_affine_bias_gradient_is_the_batch_sum():
    ev = evaluation("affine.net")
    x, w, b = (ev.checked.graph.input(n).value for n in ("X", "W", "b"))
    assert x.shape == (2, 2) and w.shape == (2, 3) and b.shape == (3,)
    dy = next(s.upstream for s in ev.steps if s.node.id == "Y")
    y = x @ w + b
    np.testing.assert_allclose(dy, y, rtol=1e-15)  # L = 0.5 * sum(Y ** 2)
    np.testing.assert_array_equal(ev.gradients["b"], dy.sum(axis=0))
    np.testing.assert_allclose(ev.gradients["W"], x.T @ dy, rtol=1e-14)
    np.testing.assert_allclose(ev.gradients["X"], dy @ w.T, rtol=1e-14)


def test_relu_mask():
    ev = evaluation("relu_mask.net")
    np.testing.assert_array_equal(ev.output, [[1.0, 0.0], [0.0, 3.0]])
    np.testing.assert_array_equal(ev.gradients["x"], [[1.0, 0.0], [0.0, 1.0]])


@pytest.mark.parametrize("path", sorted(GRAPHS.glob("*.net")), ids=lambda p: p.name)
def test_gradients_agree_with_central_differences(path):
    assert all(c.passed for c in numeric_checks(api.graph_evaluation(api.read(path))))


OPERATIONS = """
input x = randn(2, 3, seed=1)
input v = [0.5, 1.5, 2.5]
input W = randn(3, 2, seed=2)
let s = softmax(x) * v - min(x, 0.2) / sqrt(v) + max(x, -0.1) ** 3
let t = tanh(x.T) @ transpose(W) + sigmoid(relu(x)).T @ W.T
output z = mean(s, axis=0) @ exp(v) + sum(log(v) * -x) + sum(t, axis=1) @ v
"""


def test_every_primitive_against_central_differences(tmp_path):
    f = tmp_path / "ops.net"
    f.write_text(OPERATIONS)
    ev = api.graph_evaluation(api.read(f))
    assert ev.output.shape == ()
    assert all(c.passed for c in numeric_checks(ev))


def test_grad_json_document():
    code, out, _ = run("grad", str(GRAPHS / "apple.net"), "--json")
    doc = json.loads(out)
    assert code == 0
    assert doc["output"] == {"name": "price", "value": 220.00000000000003}
    assert doc["gradients"] == {"apple": 2.2, "apple_num": 110.00000000000001, "tax": 200.0}
    assert all(c["passed"] for c in doc["check"].values())
    code, out, _ = run("grad", str(GRAPHS / "relu_mask.net"), "--json", "--no-check")
    assert json.loads(out)["gradients"]["x"] == [[1.0, 0.0], [0.0, 1.0]] and json.loads(out)["check"] is None


def test_draw_graph_svg(tmp_path):
    out = tmp_path / "ao.svg"
    code, text, _ = run("draw", str(GRAPHS / "apple_orange.net"), "-o", str(out))
    assert code == 0 and "apple ─ 100 ─▶ (×) apple_price  ◀─ 2.2" in text
    root = ET.parse(out).getroot()
    texts = {(t.get("class"), t.text) for t in root.iter(f"{SVG}text")}
    assert len(list(root.iter(f"{SVG}circle"))) == 4
    assert {t for c, t in texts if c == "op"} == {"×", "+"}
    assert {t for c, t in texts if c == "input"} == {"apple", "apple_num", "orange", "orange_num", "tax"}
    assert {("forward", "715"), ("forward", "650"), ("backward", "2.2"), ("backward", "110"),
            ("backward", "3.3"), ("backward", "165"), ("backward", "650"), ("backward", "1")} <= texts


def test_draw_sigmoid_constants_and_symbols(tmp_path):
    out = tmp_path / "s.svg"
    assert run("draw", str(GRAPHS / "sigmoid.net"), "-o", str(out))[0] == 0
    root = ET.parse(out).getroot()
    texts = [(t.get("class"), t.text) for t in root.iter(f"{SVG}text")]
    assert [t for c, t in texts if c == "op"] == ["×", "exp", "+", "/"]
    assert sorted(t for c, t in texts if c == "const") == ["-1", "1", "1"]


def test_draw_pipeline_svg(tmp_path):
    out = tmp_path / "c.svg"
    code, text, _ = run("draw", str(ROOT / "models" / "simple_conv_net.net"), "-o", str(out))
    assert code == 0 and "433,890 parameters" in text
    root = ET.parse(out).getroot()
    texts = [(t.get("class"), t.text) for t in root.iter(f"{SVG}text")]
    assert [t for c, t in texts if c == "layer-name"] == [
        "Convolution(30, kernel=5)", "ReLU", "Pooling(2)", "Affine(4320, 100)", "ReLU", "Affine(100, 10)",
        "SoftmaxWithLoss"]
    assert [t for c, t in texts if c == "kernel-name"] == ["kernel 1: Convolution+ReLU+Pooling",
                                                           "kernel 2: Affine+ReLU"]
    assert [t for c, t in texts if c == "shape"] == ["1x28x28", "30x24x24", "30x24x24", "30x12x12", "100", "100",
                                                     "10"]
    assert ("params", "432,100 params") in texts


def test_svg_labels_are_escaped(tmp_path):
    f = tmp_path / "g.net"
    f.write_text("input a = 1\ninput b = 2\noutput c = a - b\n")
    out = tmp_path / "g.svg"
    assert run("draw", str(f), "-o", str(out))[0] == 0
    ET.parse(out)  # well-formed


@pytest.mark.parametrize("path", sorted(ROOT.glob("models/**/*.net")), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_model_passes_check(path):
    code, out, err = run("check", str(path))
    assert (code, err) == (0, "") and ": ok (" in out


@pytest.mark.parametrize("command", ["summary", "train", "gradcheck"])
def test_graph_files_are_not_networks(command):
    code, _, err = run(command, str(GRAPHS / "apple.net"))
    assert code == 2 and "is a computational graph, not a network of layers" in err


def test_grad_refuses_a_network():
    code, _, err = run("grad", str(ROOT / "models" / "two_layer_net.net"))
    assert code == 2 and "is a network of layers, not a computational graph" in err


def test_graph_ir_round_trips_through_json(tmp_path):
    doc = api.ir_document(api.read(GRAPHS / "affine.net"))
    f = tmp_path / "affine.json"
    f.write_text(json.dumps(doc))
    ev = api.graph_evaluation(api.read(f))
    np.testing.assert_array_equal(ev.gradients["b"], evaluation("affine.net").gradients["b"])


def test_a_json_graph_with_an_undefined_operand_is_an_error(tmp_path):
    doc = api.ir_document(api.read(GRAPHS / "apple.net"))
    doc["graph"]["nodes"][0]["operands"][0] = "pear"
    f = tmp_path / "bad.json"
    f.write_text(json.dumps(doc))
    with pytest.raises(SpecError, match="'pear'"):
        api.check_graph(api.read(f))
