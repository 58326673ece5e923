"""Layers written as expressions (specc.expr): the derived backward against central differences, the
built-ins' hand-written backward (the prelude's definitions) and ops.py's local derivatives; the
compiled code against the reference path; the `x @ W + b` layer against the built-in Affine."""
from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from rich.console import Console

import specc
from specc import cli
from specc.expr import prelude
from specc.expr import primitives as pr
from specc.expr.explain import explain, prelude_layer
from specc.gradcheck import check_network
from specc.graph.ops import OPS
from specc.layers import REGISTRY
from specc.layers.base import Runtime
from specc.source import Source

DENSE = """
layer Dense(n) {
  param W[in, n] = he
  param b[n] = 0
  y = x @ W + b
}
"""


def _batch(net, n=5, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, *net.input_shape)), rng.integers(0, net.loss_layer.out_shape[0], n)


# --- point 5: derived == hand-written, for every element-wise built-in and Affine ---------------------

CASES = [("ReLU", {}), ("LeakyReLU", {}), ("LeakyReLU", {"alpha": 0.2}), ("Sigmoid", {}), ("Tanh", {}),
         ("Affine", {"out": 4})]


@pytest.mark.parametrize("name,args", CASES, ids=[f"{n}{a or ''}" for n, a in CASES])
def test_derived_backward_equals_the_hand_written_one(name, args):
    rng = np.random.default_rng(1)
    derived = prelude_layer(name, (6,), args)
    full = {"in": None, "init": "auto", "out": 4} if name == "Affine" else {"alpha": 0.01, **args} \
        if name == "LeakyReLU" else {}
    builtin = REGISTRY[name](full, (6,))
    x = rng.standard_normal((7, 6)) * 3
    params = {k: rng.standard_normal(s) for k, s in builtin.param_shapes().items()}
    assert derived.param_shapes() == builtin.param_shapes()
    y1, back1 = derived.forward(params, x, True, Runtime(None, {}))
    y2, back2 = builtin.forward(params, x, True, Runtime(None, {}))
    np.testing.assert_allclose(y1, y2, rtol=0, atol=1e-12)
    dy = rng.standard_normal(y1.shape)
    (dx1, g1), (dx2, g2) = back1(dy), back2(dy)
    np.testing.assert_allclose(dx1, dx2, rtol=0, atol=1e-12)
    assert set(g1) == set(g2)
    for k in g1:
        np.testing.assert_allclose(g1[k], g2[k], rtol=0, atol=1e-12)


def test_the_prelude_defines_every_element_wise_built_in_and_affine():
    assert set(prelude.names()) == {"ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Affine"}
    assert all(name in REGISTRY for name in prelude.names())


# --- each primitive's rule program against ops.py's local derivative -----------------------------------

_ARITY_ATTRS = {"pow": {"p": 3}, "max": {"c": 0.3}, "min": {"c": -0.2}}


@pytest.mark.parametrize("op", sorted(set(pr.VJP) - {"matmul", "transpose"}))
def test_each_rule_program_equals_the_graph_primitive(op):
    rng = np.random.default_rng(2)
    o = OPS[op]
    xs = tuple(rng.uniform(0.5, 2.0, (3, 4)) * rng.choice([-1, 1], (3, 4)) if op not in ("log", "sqrt")
               else rng.uniform(0.5, 2.0, (3, 4)) for _ in range(o.arity))
    attrs = _ARITY_ATTRS.get(op, {})
    y, closure = o.run(xs, attrs)
    bind = {"ab"[k]: v for k, v in enumerate(xs)}
    np.testing.assert_allclose(pr.execute(pr.FORWARD[op](attrs), dict(bind), "y"), y, rtol=1e-14)
    g = rng.standard_normal(y.shape)
    for program, (expected, _) in zip(pr.VJP[op](attrs), closure(g)):
        got = pr.execute(program, {**bind, "y": y, "g": g}, "d") if program else g
        np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-15)


# --- the x @ W + b layer is the built-in Affine ------------------------------------------------------

@pytest.mark.parametrize("fuse", [True, False], ids=["fused", "reference"])
def test_x_at_W_plus_b_is_affine(fuse):
    mine = specc.compile(DENSE + "input 6\nDense(4) -> Tanh -> Dense(3) -> SoftmaxWithLoss\n", dtype="float64",
                         fuse=fuse)
    builtin = specc.compile("input 6\nAffine(4) -> Tanh -> Affine(3) -> SoftmaxWithLoss\n", dtype="float64",
                            fuse=fuse)
    assert list(mine.params) == list(builtin.params) == ["W1", "b1", "W2", "b2"]
    rng = np.random.default_rng(3)
    for k in builtin.params:  # the same initial values, and not zero biases
        builtin.params[k] = mine.params[k] = rng.standard_normal(builtin.params[k].shape)
    x, t = _batch(builtin, 8)
    assert abs(mine.loss(x, t) - builtin.loss(x, t)) <= 1e-12
    g1, g2 = mine.gradient(x, t), builtin.gradient(x, t)
    for k in g2:
        np.testing.assert_allclose(g1[k], g2[k], rtol=0, atol=1e-12)


# --- networks with expression layers: fused == reference, gradcheck, checkpoints ---------------------------

NETS = {
    "swish": "layer Swish = x * sigmoid(x)\ninput 5\nAffine(4) -> Swish -> Affine(3) -> SoftmaxWithLoss\n",
    "prelu": "layer PReLU(init_a=0.25) {\n  param a[in] = init_a\n  y = max(x, 0) + a * min(x, 0)\n}\n"
             "input 5\nAffine(4) -> PReLU -> Affine(3) -> SoftmaxWithLoss\n",
    "gelu": "layer GELU = 0.5 * x * (1 + tanh(sqrt(2 / 3.141592653589793) * (x + 0.044715 * x ** 3)))\n"
            "input 5\nAffine(4) -> GELU -> Affine(3) -> SoftmaxWithLoss\n",
    "leaky": "layer Leaky(alpha=0.1) = max(x, 0) + alpha * min(x, 0)\ninput 5\n"
             "Affine(4) -> Leaky(0.3) -> Affine(3) -> SoftmaxWithLoss\n",
    "first-layer-dense": DENSE + "input 5\nDense(4) -> ReLU -> Dense(3) -> SoftmaxWithLoss\n",
    "image-scale": "layer Scale(c) {\n  param s[c, 1, 1] = 1\n  param t[c, 1, 1] = 0\n  let z = x * s\n"
                   "  y = z * z + t - x / (1 + exp(-s))\n}\ninput 2x3x3\nScale(2) -> Affine(3) -> SoftmaxWithLoss\n",
}


@pytest.mark.parametrize("name", NETS)
def test_fused_equals_reference_and_gradients_check(name):
    fused = specc.compile(NETS[name], dtype="float64")
    ref = specc.compile(NETS[name], dtype="float64", fuse=False)
    rng = np.random.default_rng(4)
    for k in fused.params:
        fused.params[k] = ref.params[k] = rng.standard_normal(fused.params[k].shape) * 0.5
    x, t = _batch(fused, 6, seed=5)
    assert abs(fused.loss(x, t) - ref.loss(x, t)) <= 1e-12
    g1, g2 = fused.gradient(x, t), ref.gradient(x, t)
    for k in g1:
        np.testing.assert_allclose(g1[k], g2[k], rtol=1e-10, atol=1e-12)
    report = check_network(specc.compile(NETS[name], dtype="float64"))
    assert all(r.passed for r in report.results), report.results


def test_swish_net_model_passes_gradcheck_and_saves_weights(tmp_path):
    checked = specc.check_file("models/swish_net.net")
    assert [c.spec.type for c in checked.layers] == ["Affine", "Swish", "Affine", "SoftmaxWithLoss"]
    report = check_network(specc.load("models/swish_net.net", dtype="float64"))
    assert all(r.passed for r in report.results)
    net = specc.load("models/swish_net.net")
    path = tmp_path / "w.npz"
    net.save_params(str(path))
    again = specc.load("models/swish_net.net", seed=9)
    again.load_params(str(path))
    x, t = _batch(net, 4)
    x = x.astype(np.float32)
    assert net.loss(x, t) == again.loss(x, t)


def test_the_ir_of_an_expression_layer_round_trips_through_json(tmp_path):
    source = Source("prelu.net", NETS["prelu"])
    doc = specc.ir_document(source)
    layer = doc["layers"][1]
    assert layer["type"] == "PReLU" and layer["args"] == {"init_a": 0.25}
    assert layer["expression"]["params"][0]["shape"] == ["in"]
    path = tmp_path / "prelu.json"
    path.write_text(json.dumps(doc))
    a = specc.load(path, dtype="float64")
    b = specc.compile(NETS["prelu"], dtype="float64")
    x, t = _batch(a)
    assert a.loss(x, t) == b.loss(x, t)
    assert np.all(a.params["a1"] == 0.25)


def test_the_summary_counts_parameters_and_flops_from_the_nodes():
    checked = specc.check_text(DENSE + "layer Swish = x * sigmoid(x)\ninput 784\n"
                                       "Dense(50) -> Swish -> Dense(10) -> SoftmaxWithLoss\n")
    rows = specc.summary(checked).rows
    assert [r.params for r in rows[:3]] == [784 * 50 + 50, 0, 510]
    # matmul 2*in*out and the bias add; sigmoid's four NumPy passes and the product
    assert [r.flops for r in rows[:3]] == [2 * 784 * 50 + 50, 5 * 50, 2 * 50 * 10 + 10]


def test_the_generated_code_preallocates_and_reuses_the_forward_values():
    code = specc.compile(NETS["swish"]).code
    backward = code[code.index("def backward"):]
    assert "np.tanh" not in backward and "np.exp" not in backward  # sigmoid's y is read, not recomputed
    swish = backward[backward.index("# [2] Swish"):backward.index("# [1]")]
    body = [line for line in swish.splitlines()[1:] if line.strip()]
    assert body and all("out=" in line or "+=" in line for line in body), body


# --- specc explain -------------------------------------------------------------------------------

def test_explain_sigmoid_works_the_chapter_steps():
    ex = explain("Sigmoid")
    ops = [s.node.op for s in ex.evaluation.steps]
    assert ops == ["div", "add", "exp", "neg"]  # `/`, `+`, `exp`, `×(−1)`, in backward order
    div, add, exp_, neg = ex.evaluation.steps
    y = div.value
    np.testing.assert_allclose(div.sent[-1].gradient, -y ** 2, rtol=1e-14)  # `/` gives −y²
    np.testing.assert_array_equal(add.sent[1].gradient, add.upstream)  # `+` passes it on (to exp(-x))
    np.testing.assert_allclose(exp_.sent[0].gradient, exp_.upstream * exp_.value, rtol=1e-14)
    np.testing.assert_array_equal(neg.sent[0].gradient, -neg.upstream)  # ×(−1) flips the sign
    np.testing.assert_allclose(ex.evaluation.gradients["x"], y * (1 - y), rtol=1e-14)  # dy·y(1−y)
    assert ex.agreement <= 1e-12 and all(c.passed for c in ex.checks)


def _run(*args):
    out = Console(file=io.StringIO(), width=120, color_system=None)
    err = Console(file=io.StringIO(), width=120, color_system=None)
    return cli.run(list(args), out, err), out.file.getvalue(), err.file.getvalue()


def test_explain_command_prints_and_draws(tmp_path):
    svg = tmp_path / "sigmoid.svg"
    code, out, err = _run("explain", "Sigmoid", "-o", str(svg))
    assert code == 0, err
    assert "layer Sigmoid = 1 / (1 + exp(-x))" in out and "dy·y(1 − y)" in out
    texts = [t.text for t in ET.parse(svg).getroot().iter() if t.tag.endswith("text") and t.text]
    assert {"/", "+", "exp", "−", "x"} <= set(texts)
    code, out, err = _run("explain", "Sigmod")
    assert code == 2 and "did you mean 'Sigmoid'" in err and "Traceback" not in err


@pytest.mark.parametrize("text,names", [
    # an expression layer's own W after an Affine's W1: it took W1 too, the Affine's array overwritten
    ("layer Lin { param W[in, 5] = he; y = x @ W }\ninput 4\nAffine(3) -> Lin -> Affine(2) -> SoftmaxWithLoss",
     [("W1", "b1"), ("W2",), ("W3", "b3")]),
    # two expression layers whose parameters are named p1: both were p11
    ("layer E1 { param p1[3] = 0; y = p1 + x }\nlayer E2 { param p1[3] = 0; param p2[3] = 0; y = p1 * x + p2 }\n"
     "input 4\nAffine(3) -> E1 -> E2 -> Affine(2) -> SoftmaxWithLoss", [("W1", "b1"), ("p11",), ("p12", "p22"),
                                                                     ("W2", "b2")]),
])
def test_no_two_layers_share_a_parameter_name(text, names):
    """Regression: names were numbered per group of names (W, b for Affine; W alone for Lin), so layers of
    different groups sharing a name got the same one, and one array: predict raised a NumPy ValueError."""
    net = specc.compile(text, dtype="float64")
    assert [tuple(c.params) for c in net.checked.layers if c.params] == names
    assert sum(v.size for v in net.params.values()) == net.checked.parameter_count
    assert net.predict(np.ones((2, 4))).shape == (2, 2)
    assert check_network(net, batch=4).passed
