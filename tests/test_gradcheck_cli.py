"""`specc gradcheck` and specc.gradcheck: passing models print PASS rows and exit 0; a broken
layer makes it exit 1 and name the first layer whose backward disagrees, by its .net line."""
from __future__ import annotations

import io
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import ROOT
from rich.console import Console

import specc
from specc import cli
from specc.gradcheck import Result, check_layer, check_network
from specc.layers.activations import ReLU
from specc.layers.affine import Affine

TWO_LAYER = ROOT / "models" / "two_layer_net.net"


def specc_run(*argv) -> tuple[int, str, str]:
    out = Console(file=io.StringIO(), width=160, color_system=None, highlight=False)
    err = Console(file=io.StringIO(), width=160, color_system=None, highlight=False)
    code = cli.run([str(a) for a in argv], out, err)
    return code, out.file.getvalue(), err.file.getvalue()


def rows(text: str) -> dict[str, str]:
    """parameter -> PASS/FAIL from the result tables."""
    return {m.group(1): m.group(2) for m in re.finditer(r"^\W*(\S+)\s.*\b(PASS|FAIL)\b", text, re.MULTILINE)}


def column_of(model: Path, text: str) -> tuple[int, int]:
    for n, line in enumerate(model.read_text().splitlines(), 1):
        if not line.lstrip().startswith("#") and text in line:
            return n, line.index(text) + 1
    raise AssertionError(text)


@pytest.mark.parametrize("flags", [[], ["--unfused"]], ids=["fused", "unfused"])
def test_gradcheck_passes(flags):
    code, out, err = specc_run("gradcheck", TWO_LAYER, "--batch", "4", "--samples", "10", *flags)
    assert (code, err) == (0, "")
    assert rows(out) == {"W1": "PASS", "b1": "PASS", "W2": "PASS", "b2": "PASS"}
    assert "all gradients agree" in out
    assert ("unfused path" in out) == bool(flags)


def test_gradcheck_command_in_a_subprocess():
    """The installed entry point, as a user types it, from the repository root."""
    r = subprocess.run([sys.executable, "-m", "specc", "gradcheck", "models/two_layer_net.net"],
                       capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("PASS") == 4 and "FAIL" not in r.stdout
    assert "Traceback" not in r.stderr


def _wrong_relu_backward(self, p, x, train, rt):
    y = np.maximum(x, 0)
    return y, lambda dy: (dy * (y >= 0), {})  # the mask of x >= -inf: passes negative inputs' gradients


def test_broken_layer_is_named(monkeypatch):
    monkeypatch.setattr(ReLU, "forward", _wrong_relu_backward)
    code, out, err = specc_run("gradcheck", TWO_LAYER, "--unfused", "--batch", "4", "--samples", "10")
    assert (code, err) == (1, "")
    assert rows(out)["W1"] == "FAIL" and rows(out)["W2"] == "PASS"
    line, col = column_of(TWO_LAYER, "ReLU")
    assert f"first layer whose backward disagrees: layer 2, ReLU (line {line}, column {col})" in out
    assert "parameters disagree" in out
    assert "Traceback" not in out


def test_the_first_broken_layer_is_named(monkeypatch):
    """Both Affine layers are broken: the one nearer the input is blamed."""
    original = Affine.forward

    def doubled_bias_gradient(self, p, x, train, rt):
        y, backprop = original(self, p, x, train, rt)

        def wrong(dy):
            dx, grads = backprop(dy)
            return dx, {**grads, "b": 2 * grads["b"]}

        return y, wrong

    monkeypatch.setattr(Affine, "forward", doubled_bias_gradient)
    code, out, _ = specc_run("gradcheck", TWO_LAYER, "--unfused", "--samples", "10")
    assert code == 1
    assert rows(out)["b1"] == "FAIL" and rows(out)["b2"] == "FAIL" and rows(out)["W1"] == "PASS"
    line, col = column_of(TWO_LAYER, "Affine(784, 50)")
    assert f"first layer whose backward disagrees: layer 1, Affine(784, 50) (line {line}, column {col})" in out


def test_broken_layer_that_also_modifies_dy_is_named_not_a_crash(monkeypatch):
    """Regression: check_layer raised AssertionError for a backward that writes into dy (the book's
    Relu.backward), so `specc gradcheck` crashed with a traceback instead of naming the layer."""
    def book_relu_wrong(self, p, x, train, rt):
        y = np.maximum(x, 0)

        def backprop(dout):
            dout *= 2 * (y > 0)
            return dout, {}

        return y, backprop

    monkeypatch.setattr(ReLU, "forward", book_relu_wrong)
    code, out, err = specc_run("gradcheck", TWO_LAYER, "--unfused", "--batch", "4", "--samples", "10")
    assert (code, err) == (1, "")
    assert "first layer whose backward disagrees: layer 2, ReLU" in out
    assert "dy (modified in place)" in out


def test_broken_generated_code_fails_the_fused_check(monkeypatch):
    """The fused path runs generated code: a wrong emitted backward fails `specc gradcheck` even
    though every reference layer is right; the blame then falls on the generated code."""
    monkeypatch.setattr(ReLU, "backward_code", ("np.multiply({dy}, 2.0, out={dx})",))
    code, out, _ = specc_run("gradcheck", TWO_LAYER, "--batch", "4", "--samples", "10")
    assert code == 1
    assert rows(out)["W1"] == "FAIL" and rows(out)["W2"] == "PASS"
    assert "first layer whose backward disagrees" not in out
    assert "the generated code departs from the reference layers at layer 2, ReLU" in out
    code, out, _ = specc_run("gradcheck", TWO_LAYER, "--unfused", "--batch", "4", "--samples", "10")
    assert code == 0


def test_gradcheck_of_a_bad_file_is_a_spec_error(tmp_path):
    bad = tmp_path / "bad.net"
    bad.write_text("input 784\nAffine(100, 10) -> SoftmaxWithLoss\n")
    code, out, err = specc_run("gradcheck", bad)
    assert code == 2 and out == ""
    assert err.startswith(f"{bad}:2:8: error:") and "Traceback" not in err


# --- the library functions -------------------------------------------------------------------------------

def test_check_network_needs_float64():
    with pytest.raises(ValueError, match="float64"):
        check_network(specc.load(TWO_LAYER))


def test_check_network_samples_and_reports():
    report = check_network(specc.load(TWO_LAYER, dtype="float64"), batch=2, limit=5)
    assert report.passed and report.culprit is None and report.culprit_results == []
    assert [(r.name, r.shape, r.checked) for r in report.results] == [
        ("W1", (784, 50), 5), ("b1", (50,), 5), ("W2", (50, 10), 5), ("b2", (10,), 5)]


def test_check_layer_detects_a_wrong_parameter_gradient():
    layer = Affine({"in": None, "out": 3, "init": "auto"}, (4,))
    rng = np.random.default_rng(0)
    x, p = rng.standard_normal((2, 4)), {"W": rng.standard_normal((4, 3)), "b": rng.standard_normal(3)}
    assert all(r.passed for r in check_layer(layer, x, p, {}))
    original = layer.forward
    layer.forward = lambda p, x, train, rt: (original(p, x, train, rt)[0],
                                             lambda dy: (dy @ p["W"].T, {"W": x.T @ dy, "b": dy.sum(axis=0) + 1e-3}))
    results = {r.name: r for r in check_layer(layer, x, p, {})}
    assert results["input"].passed and results["W"].passed
    assert not results["b"].passed and results["b"].max_abs == pytest.approx(1e-3, rel=1e-3)


def test_result_thresholds():
    assert Result("w", (1,), 1, 1e-10, 1.0).passed  # tiny absolute error on a ~0 gradient
    assert Result("w", (1,), 1, 1.0, 1e-6).passed
    assert not Result("w", (1,), 1, 1e-3, 1e-3).passed
    assert Result("w", (2,), 2, 0.0, 0.0).to_json()["passed"] is True


def test_a_wrong_generated_backward_is_traced_to_its_layer(monkeypatch):
    # every reference layer is right, so the blame falls on the generated code (kernel by kernel)
    from specc.gradcheck import check_network
    from specc.layers.activations import ReLU
    monkeypatch.setattr(ReLU, "backward_code", ("np.multiply({dy}, {y} > 0.1, out={dx})",))
    report = check_network(specc.load(ROOT / "models" / "two_layer_net.net", dtype="float64"))
    assert not report.passed
    assert report.culprit == "layer 2, ReLU, in the generated backward pass"


def test_a_wrong_generated_forward_is_traced_to_its_kernel(monkeypatch):
    from specc.gradcheck import check_network
    from specc.layers.activations import ReLU
    monkeypatch.setattr(ReLU, "forward_code", ("np.maximum({x}, 0.1, out={y})",))
    report = check_network(specc.load(ROOT / "models" / "two_layer_net.net", dtype="float64"))
    assert not report.passed and report.culprit.startswith("kernel 1 (Affine+ReLU)")
