"""ONNX export and import, judged by onnxruntime: every model and every layer kind agrees with specc to
1e-5 in float32; the round trip .net -> ONNX -> .net keeps the IR; models laid out the way other
exporters write them import and predict as onnxruntime runs them; what specc cannot express is refused
with the node and its operator."""
from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from helpers import ROOT
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

import specc
from specc import api, cli
from specc.errors import DataError, SpecError, UsageError
from specc.gradcheck import check_network
from specc.interop import OPSET
from specc.interop.onnx_export import to_onnx
from specc.interop.onnx_import import imported
from specc.layers.base import Labels
from specc.training import data

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

MODELS = sorted(ROOT.glob("models/*.net"))  # models/swish_net.net has a layer written as an expression

PRELU = "layer PReLU(init_a=0.25) { param a[in] = init_a; y = max(x, 0) + a * min(x, 0) }"
GELU = "layer GELU = 0.5 * x * (1 + tanh(sqrt(2 / 3.14159) * (x + 0.044715 * x ** 3)))"
DENSE = "layer Dense(n) {\n  param W[in, n] = he\n  param b[n] = 0\n  y = x @ W + b\n}"

# Every layer kind and the details where specc is not ONNX's default: eps, per-channel and per-feature
# BatchNorm, max pooling whose padded cells must never win (right after a convolution, whose outputs
# are negative in places), average pooling that counts padded cells, LeakyReLU's alpha, Dropout, an
# explicit Flatten, MeanSquaredError's identity output.
SPECS = {
    "every_kind.net": """input 1x28x28
Convolution(4, kernel=3, pad=1) -> Pooling(2, stride=2, pad=1)
  -> BatchNorm(eps=0.001) -> LeakyReLU(0.2) -> AvgPooling(3, stride=2, pad=1) -> Tanh -> Dropout(0.3)
  -> Affine(16) -> BatchNorm -> Sigmoid -> Affine(10) -> SoftmaxWithLoss
""",
    "regression.net": """input 784
Affine(32) -> BatchNorm(momentum=0.8) -> Tanh -> Dropout -> Affine(3) -> MeanSquaredError
""",
    "flatten.net": """input 1x28x28
Flatten -> BatchNorm -> ReLU -> Affine(10) -> SoftmaxWithLoss
""",
    "deep_conv_net.net": """# the book's DeepConvNet (ch. 8), narrower
input 1x28x28
Convolution(4, kernel=3, pad=1) -> ReLU -> Convolution(4, kernel=3, pad=1) -> ReLU -> Pooling(2)
  -> Convolution(8, kernel=3, pad=1) -> ReLU -> Convolution(8, kernel=3, pad=2) -> ReLU -> Pooling(2)
  -> Affine(20) -> ReLU -> Dropout(0.5) -> Affine(10) -> Dropout(0.5) -> SoftmaxWithLoss
""",
    # layers written as expressions: a learnable per-feature PReLU, a tanh-approximated GELU, x @ W + b
    "prelu_gelu_dense.net": f"""{PRELU}
{GELU}
{DENSE}
input 784
Dense(50) -> PReLU -> GELU -> Dense(10) -> SoftmaxWithLoss
""",
    # every primitive: a per-channel parameter broadcast over an image, .T of a parameter, exp log sqrt
    # neg pow sub div relu, max/min with a constant (negative too)
    "every_primitive.net": """layer ChannelScale { param s[in, 1, 1] = 1; param t[in, 1, 1] = 0; y = x * s + t }
layer Tied(n) { param V[n, in] = he; param c[n] = 0; y = x @ V.T + c }
layer Mix = log(1 + exp(min(x, 10))) - sqrt(x * x + 1) / 2 + (-x) ** 2 / 10 + relu(x)
layer Clip = max(min(x, 3), -3)
input 1x28x28
Convolution(4, kernel=3) -> ChannelScale -> Pooling(2) -> Flatten -> Tied(32) -> Mix -> Clip -> Tied(10)
  -> SoftmaxWithLoss
""",
}
IDS = [p.name for p in MODELS] + list(SPECS)
# the networks of built-in layers only: these come back from ONNX as the same IR
BUILT_IN = [i for i, name in enumerate(IDS)
            if "layer " not in (SPECS.get(name) or (ROOT / "models" / name).read_text())]


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    """200 digits of the embedded sample, scaled to [0, 1] as in training."""
    d = data.load(None)
    return (d.x_test[:200].astype(np.float32) / 255).reshape(200, 1, 28, 28)


def _spec_paths(tmp_path: Path) -> list[Path]:
    out = list(MODELS)
    for name, text in SPECS.items():
        (tmp_path / name).write_text(text)
        out.append(tmp_path / name)
    return out


@pytest.fixture(scope="module")
def specs(tmp_path_factory) -> list[Path]:
    return _spec_paths(tmp_path_factory.mktemp("specs"))


def _trained_like(path: Path) -> specc.Network:
    """The network with non-trivial weights: random biases, BatchNorm scale, shift and statistics away from 1/0,
    and every other parameter that starts as one constant (PReLU's slopes) spread around it, one per feature."""
    net = specc.load(path)
    rng = np.random.default_rng(7)
    for name, value in net.params.items():
        if name.startswith("gamma"):
            value[...] = rng.uniform(0.5, 1.5, value.shape)
        elif name.startswith(("b", "beta")):
            value[...] = rng.normal(0, 0.3, value.shape)
        elif np.all(value == value.flat[0]):
            value[...] = value.flat[0] + rng.normal(0, 0.3, value.shape)
    for name, value in net.state.items():
        value[...] = rng.uniform(0.3, 2.0, value.shape) if "var" in name else rng.normal(0, 0.5, value.shape)
    return net


def _session(model) -> "ort.InferenceSession":
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def _inputs(net: specc.Network, images: np.ndarray) -> np.ndarray:
    if images[0].size != np.prod(net.input_shape):  # not a network of digits (mlp_5x100_sigmoid: 100 features)
        return np.random.default_rng(3).standard_normal((len(images), *net.input_shape)).astype(np.float32)
    return images.reshape(len(images), *net.input_shape)


def _expected(net: specc.Network, x: np.ndarray) -> np.ndarray:
    """What the ONNX model outputs: probabilities, or a MeanSquaredError network's outputs."""
    return net.probabilities(x)


# --- export -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("index", range(len(MODELS) + len(SPECS)), ids=IDS)
def test_onnxruntime_agrees_with_specc(specs, images, index):
    path = specs[index]
    net = _trained_like(path)
    model = to_onnx(net)
    onnx.checker.check_model(model, full_check=True)
    assert model.opset_import[0].version == OPSET
    (inp,), (out,) = model.graph.input, model.graph.output
    assert [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim] == ["N", *net.input_shape]
    assert out.type.tensor_type.shape.dim[0].dim_param == "N"
    x = _inputs(net, images)
    got = _session(model).run(None, {"input": x})[0]
    want = _expected(net, x)
    assert got.dtype == np.float32 and got.shape == want.shape
    assert np.abs(got - want).max() <= 1e-5
    if net.plan.labels is Labels.CLASSES:
        assert (got.argmax(axis=1) == want.argmax(axis=1)).all()
        assert np.allclose(got.sum(axis=1), 1, atol=1e-5)


def test_max_pooling_padding_never_wins(tmp_path):
    """All-negative inputs: a padded cell that counted as 0 would win every edge window."""
    path = tmp_path / "pool.net"
    path.write_text("input 1x5x5\nPooling(3, stride=2, pad=1) -> AvgPooling(2, stride=1, pad=1) -> Flatten "
                    "-> Affine(2) -> MeanSquaredError\n")
    net = specc.load(path)
    x = -1 - np.random.default_rng(0).random((5, 1, 5, 5), dtype=np.float32)
    got = _session(to_onnx(net)).run(None, {"input": x})[0]
    assert np.abs(got - net.predict(x)).max() <= 1e-5


def test_node_names_and_doc_strings_carry_the_net_line(images):
    path = ROOT / "models" / "simple_conv_net.net"
    net = specc.load(path)
    model = to_onnx(net)
    places = {f"{path}:{c.spec.span.line}:{c.spec.span.col}" for c in net.checked.layers}
    named = {n.name.split("@", 1)[1] for n in model.graph.node}
    assert named == places
    for node in model.graph.node:
        assert node.name.split("@", 1)[1] in node.doc_string
    ops = [n.op_type for n in model.graph.node]
    assert ops == ["Conv", "Relu", "MaxPool", "Flatten", "Gemm", "Relu", "Gemm", "Softmax"]
    pool = model.graph.node[2]
    assert pool.name == f"Pooling3@{path}:8:6" and "Pooling(2)" in pool.doc_string
    # the initializers are named as specc names its parameters
    assert {t.name for t in model.graph.initializer} == {"W1", "b1", "W2", "b2", "W3", "b3"}


def test_an_expression_layer_is_written_as_onnx_primitives_named_at_its_use_and_its_definition():
    path = ROOT / "models" / "swish_net.net"
    model = to_onnx(specc.load(path))
    assert [n.op_type for n in model.graph.node] == ["Gemm", "Sigmoid", "Mul", "Gemm", "Softmax"]
    sigmoid, mul = model.graph.node[1:3]
    # layer Swish = x * sigmoid(x) is line 3; it is used on line 6, column 15
    assert sigmoid.name == f"Swish2.sigmoid1@{path}:6:15 (def 3:19)"
    assert mul.name == f"Swish2.mul2@{path}:6:15 (def 3:15)"
    assert list(sigmoid.input) == ["a1"] and list(mul.input) == ["a1", "a2_sigmoid1"] and list(mul.output) == ["a2"]
    assert mul.doc_string == (f"[2] Swish <- {path}:6:15; mul `x * sigmoid(x)` at {path}:3:15, "
                              f"in layer Swish defined at {path}:3:1")
    assert {t.name for t in model.graph.initializer} == {"W1", "b1", "W2", "b2"}


def test_prelu_gelu_and_dense_keep_specc_parameter_names_and_constant_exponents(tmp_path):
    net = specc.compile(SPECS["prelu_gelu_dense.net"], name=str(tmp_path / "m.net"))
    model = to_onnx(net)
    onnx.checker.check_model(model, full_check=True)
    ops = [n.op_type for n in model.graph.node]
    assert ops == ["MatMul", "Add", "Max", "Min", "Mul", "Add", "Mul", "Pow", "Mul", "Add", "Mul", "Tanh", "Add",
                   "Mul", "MatMul", "Add", "Softmax"]
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    for name in ("W1", "b1", "a1", "W2", "b2"):  # PReLU's slopes are a1: one per feature, (50,)
        assert np.array_equal(inits[name], net.params[name])
    assert inits["a1"].shape == (50,)
    prelu_mul = model.graph.node[4]
    assert list(prelu_mul.input)[0] == "a1" and "a1" not in {o for n in model.graph.node for o in n.output}
    pow_node = model.graph.node[7]
    assert inits[pow_node.input[1]].shape == () and float(inits[pow_node.input[1]]) == 3.0
    maximum = model.graph.node[2]
    assert float(inits[maximum.input[1]]) == 0.0


def test_import_gives_built_in_layers_where_an_expression_matches_and_an_expression_layer_for_the_rest(
        tmp_path, images):
    """x @ W + b is MatMul + Add: an Affine; relu(x) is Relu: a ReLU. Swish's x * sigmoid(x) reads x twice:
    element-wise branches that join again, imported as a layer written as that expression."""
    dense = tmp_path / "dense.net"
    dense.write_text(f"{DENSE}\nlayer R = relu(x)\ninput 784\nDense(50) -> R -> Dense(10) -> SoftmaxWithLoss\n")
    net = _trained_like(dense)
    (tmp_path / "d.onnx").write_bytes(to_onnx(net).SerializeToString())
    result = imported(tmp_path / "d.onnx", tmp_path / "back.net")
    assert result.text.split("\n", 1)[1] == "input 784\nAffine(50) -> ReLU\n  -> Affine(10) -> SoftmaxWithLoss\n"
    x = _inputs(net, images)
    assert np.abs(result.net.probabilities(x) - net.probabilities(x)).max() <= 1e-6
    swish = ROOT / "models" / "swish_net.net"
    (tmp_path / "s.onnx").write_bytes(to_onnx(specc.load(swish)).SerializeToString())
    r = _run("import", tmp_path / "s.onnx", "-o", tmp_path / "s.net")
    assert r.code == 0, r.err
    text = (tmp_path / "s.net").read_text()
    assert "# note: Expr1 stands for 2 element-wise nodes: Sigmoid, Mul\nlayer Expr1 = x * sigmoid(x)\n" in text
    assert text.endswith("input 784\nAffine(50) -> Expr1\n  -> Affine(10) -> SoftmaxWithLoss\n")
    original, back = specc.load(swish), api.trained(tmp_path / "s.net", tmp_path / "s.npz")
    x = _inputs(original, images)
    assert np.abs(back.probabilities(x) - original.probabilities(x)).max() <= 1e-6


def test_an_expression_operation_without_an_onnx_form_is_an_error_at_its_definition(monkeypatch, tmp_path):
    from specc.interop import onnx_expr

    monkeypatch.delitem(onnx_expr.ONNX_OPS, "tanh")  # as a new primitive would be
    path = tmp_path / "gelu.net"
    path.write_text(f"{GELU}\ninput 784\nAffine(20) -> GELU -> Affine(10) -> SoftmaxWithLoss\n")
    r = _run("export", path, "-o", tmp_path / "m.onnx")
    assert r.code == 2 and "Traceback" not in r.err and not (tmp_path / "m.onnx").exists()
    assert f"{path}:1:29: error: specc export has no ONNX form for `tanh` (in layer GELU) yet" in r.err


def test_batchnorm_is_exported_in_inference_form_with_specc_eps():
    net = specc.compile("input 784\nAffine(20) -> BatchNorm(eps=0.01, momentum=0.7) -> ReLU -> Affine(10) "
                        "-> SoftmaxWithLoss")
    bn = next(n for n in to_onnx(net).graph.node if n.op_type == "BatchNormalization")
    a = {x.name: helper.get_attribute_value(x) for x in bn.attribute}
    assert a["epsilon"] == pytest.approx(0.01) and a["momentum"] == pytest.approx(0.7)
    assert "training_mode" not in a and list(bn.input[1:]) == ["gamma1", "beta1", "running_mean1", "running_var1"]


def test_export_command_writes_a_checked_model_with_weights(tmp_path):
    runs = tmp_path / "run"
    trainer = api.training(ROOT / "models" / "two_layer_net.net", out=runs, iters=5)
    try:
        for _ in trainer.run():
            pass
    finally:
        trainer.close()
    out = tmp_path / "m.onnx"
    r = _run("export", ROOT / "models" / "two_layer_net.net", "--weights", runs / "weights.npz", "-o", out)
    assert r.code == 0 and "opset 17" in r.out and r.err == ""
    model = onnx.load(str(out))
    onnx.checker.check_model(model, full_check=True)
    w1 = numpy_helper.to_array(next(t for t in model.graph.initializer if t.name == "W1"))
    assert np.array_equal(w1, trainer.net.params["W1"])


# --- round trip -------------------------------------------------------------------------------------
def _normal_ir(net: specc.Network) -> tuple:
    """The IR up to names and spans: input shape, and each layer's type, arguments (an inferred Affine
    input size filled in; init, a training choice ONNX does not hold, left out) and shapes."""
    layers = []
    for c in net.checked.layers:
        args = {k: v for k, v in c.spec.args.items() if k != "init"}
        if c.spec.type == "Affine":
            args["in"] = int(np.prod(c.in_shape))
        layers.append((c.spec.type, args, c.in_shape, c.out_shape))
    return net.input_shape, layers


@pytest.mark.parametrize("index", BUILT_IN, ids=[IDS[i] for i in BUILT_IN])
def test_round_trip_keeps_the_ir_and_the_predictions(specs, images, tmp_path, index):
    net = _trained_like(specs[index])
    (tmp_path / "m.onnx").write_bytes(to_onnx(net).SerializeToString())
    result = imported(tmp_path / "m.onnx", tmp_path / "back.net")
    assert _normal_ir(result.net) == _normal_ir(net)
    back = api.trained(result.spec_path, result.weights_path)  # what eval and predict will load
    x = _inputs(net, images)
    assert np.abs(back.predict(x) - net.predict(x)).max() <= 1e-6
    for name, value in net.state.items():
        assert np.array_equal(back.state[name], value)


def test_imported_files_read_as_a_person_writes_them(tmp_path):
    for model, chain in [("simple_conv_net.net", "input 1x28x28\nConvolution(30, kernel=5) -> ReLU -> Pooling(2)\n"
                                                 "  -> Affine(100) -> ReLU\n  -> Affine(10) -> SoftmaxWithLoss\n"),
                         ("multi_layer_net.net", "input 784\n(Affine(100) -> BatchNorm -> ReLU -> Dropout(0.1)) * 3\n"
                                                 "  -> Affine(10) -> SoftmaxWithLoss\n")]:
        (tmp_path / "m.onnx").write_bytes(to_onnx(specc.load(ROOT / "models" / model)).SerializeToString())
        text = imported(tmp_path / "m.onnx", tmp_path / "m.net").text
        assert text.startswith("# imported by specc from m.onnx (written by specc ")
        assert text.split("\n", 1)[1] == chain


# --- models specc did not write -------------------------------------------------------------------
def _model(nodes, inits, in_shape=("N", 1, 28, 28), out_shape=("N", 10), opset=13, input_name="input.1"):
    graph = helper.make_graph(nodes, "foreign", [helper.make_tensor_value_info(input_name, TensorProto.FLOAT,
                                                                              list(in_shape))],
                              [helper.make_tensor_value_info(nodes[-1].output[0], TensorProto.FLOAT, list(out_shape))],
                              [numpy_helper.from_array(v.astype(np.float32) if v.dtype.kind == "f" else v, k)
                               for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=7,
                              producer_name="pytorch", producer_version="2.1.0")
    onnx.checker.check_model(model, full_check=True)
    return model


def _torch_like(rng) -> tuple[list, dict]:
    """As torch.onnx.export lays out a small conv net: Conv weights as initializers, Flatten, Gemm transB=1."""
    inits = {"conv.weight": rng.normal(0, 0.3, (6, 1, 3, 3)), "conv.bias": rng.normal(0, 0.1, 6),
             "fc1.weight": rng.normal(0, 0.05, (32, 6 * 14 * 14)), "fc1.bias": rng.normal(0, 0.1, 32),
             "fc2.weight": rng.normal(0, 0.2, (10, 32)), "fc2.bias": rng.normal(0, 0.1, 10)}
    nodes = [helper.make_node("Conv", ["input.1", "conv.weight", "conv.bias"], ["/conv/Conv_output_0"],
                              name="/conv/Conv", kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[1, 1],
                              dilations=[1, 1], group=1),
             helper.make_node("Relu", ["/conv/Conv_output_0"], ["/Relu_output_0"], name="/Relu"),
             helper.make_node("MaxPool", ["/Relu_output_0"], ["/pool/MaxPool_output_0"], name="/pool/MaxPool",
                              kernel_shape=[2, 2], strides=[2, 2], pads=[0, 0, 0, 0], ceil_mode=0),
             helper.make_node("Flatten", ["/pool/MaxPool_output_0"], ["/Flatten_output_0"], name="/Flatten", axis=1),
             helper.make_node("Gemm", ["/Flatten_output_0", "fc1.weight", "fc1.bias"], ["/fc1/Gemm_output_0"],
                              name="/fc1/Gemm", alpha=1.0, beta=1.0, transB=1),
             helper.make_node("Relu", ["/fc1/Gemm_output_0"], ["/Relu_1_output_0"], name="/Relu_1"),
             helper.make_node("Gemm", ["/Relu_1_output_0", "fc2.weight", "fc2.bias"], ["/fc2/Gemm_output_0"],
                              name="/fc2/Gemm", alpha=1.0, beta=1.0, transB=1),
             helper.make_node("Softmax", ["/fc2/Gemm_output_0"], ["output"], name="/Softmax", axis=1)]
    return nodes, inits


def test_a_torch_style_model_imports_and_predicts_as_onnxruntime(tmp_path, images):
    nodes, inits = _torch_like(np.random.default_rng(1))
    model = _model(nodes, inits)
    onnx.save(model, str(tmp_path / "torch.onnx"))
    result = imported(tmp_path / "torch.onnx", tmp_path / "torch.net")
    assert result.text.split("\n", 1)[1] == ("input 1x28x28\nConvolution(6, kernel=3, pad=1) -> ReLU -> Pooling(2)\n"
                                             "  -> Affine(32) -> ReLU\n  -> Affine(10) -> SoftmaxWithLoss\n")
    assert "written by pytorch 2.1.0, opset 13" in result.text
    want = _session(model).run(None, {"input.1": images})[0]
    assert np.abs(api.trained(result.spec_path, result.weights_path).probabilities(images) - want).max() <= 1e-5


def test_a_keras_style_channels_last_flatten_is_folded_into_the_dense_weights(tmp_path, images):
    """Transpose to (N, H, W, C), Reshape by a Constant, MatMul + Add, no softmax: the dense layer's rows
    are reordered to specc's (C, H, W) flatten, and the scores are what predict gives."""
    rng = np.random.default_rng(2)
    inits = {"k": rng.normal(0, 0.3, (4, 1, 5, 5)), "kb": rng.normal(0, 0.1, 4),
             "d1": rng.normal(0, 0.05, (12 * 12 * 4, 16)), "d1b": rng.normal(0, 0.1, 16),
             "d2": rng.normal(0, 0.2, (16, 10)), "d2b": rng.normal(0, 0.1, 10)}
    shape = helper.make_tensor("shape_value", TensorProto.INT64, [2], [-1, 12 * 12 * 4])
    nodes = [helper.make_node("Conv", ["x", "k", "kb"], ["c"], name="conv2d", kernel_shape=[5, 5]),
             helper.make_node("Relu", ["c"], ["r"], name="conv2d_relu"),
             helper.make_node("MaxPool", ["r"], ["p"], name="max_pooling2d", kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Transpose", ["p"], ["t"], name="flatten_transpose", perm=[0, 2, 3, 1]),
             helper.make_node("Constant", [], ["shape"], name="flatten_shape", value=shape),
             helper.make_node("Reshape", ["t", "shape"], ["f"], name="flatten"),
             helper.make_node("MatMul", ["f", "d1"], ["m1"], name="dense/MatMul"),
             helper.make_node("Add", ["m1", "d1b"], ["a1"], name="dense/BiasAdd"),
             helper.make_node("Relu", ["a1"], ["h"], name="dense/Relu"),
             helper.make_node("MatMul", ["h", "d2"], ["m2"], name="dense_1/MatMul"),
             helper.make_node("Add", ["m2", "d2b"], ["logits"], name="dense_1/BiasAdd")]
    model = _model(nodes, inits, input_name="x")
    onnx.save(model, str(tmp_path / "keras.onnx"))
    result = imported(tmp_path / "keras.onnx", tmp_path / "keras.net")
    assert "channels-last" in result.text and "SoftmaxWithLoss is added" in result.text
    assert "Convolution(4, kernel=5) -> ReLU -> Pooling(2)\n  -> Affine(16) -> ReLU\n  -> Affine(10)" in result.text
    want = _session(model).run(None, {"x": images})[0]
    net = api.trained(result.spec_path, result.weights_path)
    assert np.abs(net.predict(images) - want).max() <= 1e-5
    assert (net.probabilities(images).argmax(axis=1) == want.argmax(axis=1)).all()


def _replace(nodes: list, index: int, **attrs) -> list:
    n = nodes[index]
    kept = {a.name: helper.get_attribute_value(a) for a in n.attribute if a.name not in attrs}
    new = helper.make_node(n.op_type, list(n.input), list(n.output), name=n.name,
                           **{**kept, **{k: v for k, v in attrs.items() if v is not None}})
    return [*nodes[:index], new, *nodes[index + 1:]]


def _refusals():
    """(what, nodes, inits, input shape, the words the message must hold)."""
    nodes, inits = _torch_like(np.random.default_rng(3))
    # a residual connection around a layer (an AveragePool of 1x1 windows), not element-wise branches
    branch = [*nodes[:2], helper.make_node("AveragePool", ["/conv/Conv_output_0"], ["/ap"], name="/ap",
                                           kernel_shape=[1, 1], strides=[1, 1]),
              helper.make_node("Add", ["/Relu_output_0", "/ap"], ["/Add_output_0"], name="/Add"), *nodes[2:]]
    branch[4] = helper.make_node("MaxPool", ["/Add_output_0"], ["/pool/MaxPool_output_0"], name="/pool/MaxPool",
                                 kernel_shape=[2, 2], strides=[2, 2])
    odd = dict(inits, **{"conv.weight": np.ones((6, 1, 3, 5))})
    sin = [*nodes[:1], helper.make_node("Sin", ["/conv/Conv_output_0"], ["/Relu_output_0"], name="/Sin"), *nodes[2:]]
    transposed = [*nodes[:3], helper.make_node("Transpose", ["/pool/MaxPool_output_0"], ["/t"], name="/T",
                                               perm=[0, 1, 3, 2]),
                  helper.make_node("Flatten", ["/t"], ["/Flatten_output_0"], name="/Flatten"), *nodes[4:]]
    avg = _replace([*nodes[:2], helper.make_node("AveragePool", ["/Relu_output_0"], ["/pool/MaxPool_output_0"],
                                                 name="/pool/Avg", kernel_shape=[3, 3], strides=[2, 2],
                                                 pads=[1, 1, 1, 1]), *nodes[3:]], 2)
    return [
        ("dilations", _replace(nodes, 0, dilations=[2, 2], pads=[2, 2, 2, 2]), inits, None,
         ["'/conv/Conv' (Conv)", "dilation"]),
        ("groups", _replace(nodes, 0, group=2), dict(inits, **{"conv.weight": np.ones((6, 1, 3, 3))}),
         ("N", 2, 28, 28), ["'/conv/Conv' (Conv)", "group=2"]),
        ("asymmetric pads", _replace(nodes, 0, pads=[0, 0, 2, 2]), inits, None,
         ["'/conv/Conv' (Conv)", "pads are [0, 0, 2, 2]"]),
        ("non-square kernel", _replace(nodes, 0, kernel_shape=[3, 5], pads=[1, 2, 1, 2]), odd, None,
         ["'/conv/Conv' (Conv)", "square"]),
        ("a branch", branch, inits, None, ["branches", "'/ap' (AveragePool)"]),
        ("an unsupported operator", sin, inits, None, ["'/Sin' (Sin)", "no layer for the operator Sin"]),
        ("dynamic spatial shape", nodes, inits, ("N", 1, "H", "W"), ["only the batch dimension may be dynamic"]),
        ("another transpose", transposed, inits, None, ["'/T' (Transpose)", "perm=[0, 1, 3, 2]"]),
        ("transA", _replace(nodes, 4, transA=1), inits, None, ["'/fc1/Gemm' (Gemm)", "transA=1"]),
        ("alpha", _replace(nodes, 6, alpha=2.0), inits, None, ["'/fc2/Gemm' (Gemm)", "alpha=2"]),
        ("count_include_pad=0", avg, inits, None, ["'/pool/Avg' (AveragePool)", "count_include_pad"]),
    ]


@pytest.mark.parametrize("what, nodes, inits, in_shape, words", _refusals(), ids=[r[0] for r in _refusals()])
def test_what_specc_cannot_express_is_refused_naming_the_node(tmp_path, what, nodes, inits, in_shape, words):
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("input.1", TensorProto.FLOAT,
                                                                         list(in_shape or ("N", 1, 28, 28)))],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 10])],
                              [numpy_helper.from_array(v.astype(np.float32), k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=7)
    path = tmp_path / "bad.onnx"
    onnx.save(model, str(path))
    with pytest.raises(SpecError) as e:
        imported(path, tmp_path / "bad.net")
    message = str(e.value)
    for word in words:
        assert word in message
    assert not (tmp_path / "bad.net").exists()
    r = _run("import", path, "-o", tmp_path / "bad.net")
    assert r.code == 2 and "Traceback" not in r.err and words[0] in r.err and r.err.startswith(f"{path}: error:")


def test_a_file_that_is_not_onnx_is_a_data_error(tmp_path):
    path = tmp_path / "x.onnx"
    path.write_bytes(b"\x00\xffnot a model at all")
    with pytest.raises(DataError, match="not a valid ONNX model"):
        imported(path, tmp_path / "x.net")
    r = _run("import", tmp_path / "missing.onnx", "-o", tmp_path / "x.net")
    assert r.code == 2 and "no such ONNX model file" in r.err


# --- the commands, and fine-tuning from imported weights ------------------------------------------------
def _run(*argv):
    out = Console(file=io.StringIO(), width=200, color_system=None, force_terminal=False, highlight=False)
    err = Console(file=io.StringIO(), width=200, color_system=None, force_terminal=False, highlight=False)
    code = cli.run([str(a) for a in argv], out, err)

    class R:
        pass
    r = R()
    r.code, r.out, r.err = code, out.file.getvalue(), err.file.getvalue()  # type: ignore[attr-defined]
    return r


def test_import_eval_and_fine_tune_from_the_imported_checkpoint(tmp_path, images):
    nodes, inits = _torch_like(np.random.default_rng(4))
    onnx.save(_model(nodes, inits), str(tmp_path / "t.onnx"))
    r = _run("import", tmp_path / "t.onnx", "-o", tmp_path / "t.net", "--weights-out", tmp_path / "w.npz")
    assert r.code == 0 and "Convolution(6, kernel=3, pad=1)" in r.out
    assert _run("eval", tmp_path / "t.net", "--weights", tmp_path / "w.npz").code == 0
    start = api.trained(tmp_path / "t.net", tmp_path / "w.npz")
    trainer = api.training(tmp_path / "t.net", out=tmp_path / "run", iters=1, init_from=tmp_path / "w.npz")
    try:
        for name, value in start.params.items():
            assert np.array_equal(trainer.net.params[name], value)
    finally:
        trainer.close()
    with pytest.raises(UsageError, match="--init-from starts a new run"):
        api.training(tmp_path / "t.net", resume=tmp_path / "run", init_from=tmp_path / "w.npz")


def test_a_layer_kind_without_an_onnx_form_is_an_error_at_its_line(monkeypatch, tmp_path):
    from specc.interop import onnx_export

    monkeypatch.delitem(onnx_export._LAYERS, "ReLU")  # as a new kind (an expression layer) would be
    r = _run("export", ROOT / "models" / "two_layer_net.net", "-o", tmp_path / "m.onnx")
    assert r.code == 2 and "Traceback" not in r.err
    assert "two_layer_net.net:2:20: error: specc export has no ONNX form for the layer ReLU yet" in r.err
    assert not (tmp_path / "m.onnx").exists()


def _dense_around(middle: list, rng, width: int = 16) -> tuple[list, dict]:
    """784 -> Gemm(width) -> `middle` (reading '/h', ending in '/m') -> Gemm(10) -> Softmax."""
    inits = {"fc1.weight": rng.normal(0, 0.05, (width, 784)), "fc1.bias": rng.normal(0, 0.3, width),
             "fc2.weight": rng.normal(0, 0.3, (10, width)), "fc2.bias": rng.normal(0, 0.1, 10)}
    nodes = [helper.make_node("Gemm", ["input.1", "fc1.weight", "fc1.bias"], ["/h"], name="/fc1", transB=1),
             *middle,
             helper.make_node("Gemm", ["/m", "fc2.weight", "fc2.bias"], ["/o"], name="/fc2", transB=1),
             helper.make_node("Softmax", ["/o"], ["output"], name="/Softmax", axis=1)]
    return nodes, inits


def test_element_wise_branches_import_as_a_layer_written_as_an_expression_and_predict_as_onnxruntime(
        tmp_path, images):
    # GELU as PyTorch's tanh approximation exports it: x * 0.5 * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3)))
    c = {"three": np.array(3.0), "k": np.array(0.044715), "s": np.array(0.7978845608), "one": np.array(1.0),
         "half": np.array(0.5)}
    gelu = [helper.make_node("Pow", ["/h", "three"], ["/p"], name="/pow"),
            helper.make_node("Mul", ["k", "/p"], ["/kp"], name="/mul_k"),
            helper.make_node("Add", ["/h", "/kp"], ["/inner"], name="/add_in"),
            helper.make_node("Mul", ["/inner", "s"], ["/si"], name="/mul_s"),
            helper.make_node("Tanh", ["/si"], ["/t"], name="/tanh"),
            helper.make_node("Add", ["one", "/t"], ["/1t"], name="/add_1"),
            helper.make_node("Mul", ["/h", "half"], ["/xh"], name="/mul_half"),
            helper.make_node("Mul", ["/xh", "/1t"], ["/m"], name="/mul_out")]
    nodes, inits = _dense_around(gelu, np.random.default_rng(5))
    model = _model(nodes, {**inits, **c}, in_shape=("N", 784))
    onnx.save(model, str(tmp_path / "gelu.onnx"))
    result = imported(tmp_path / "gelu.onnx", tmp_path / "gelu.net")
    assert ("layer Expr1 = (x * 0.5) * (1.0 + tanh((x + (0.044715 * (x ** 3.0))) * 0.7978846))\n"
            "input 784\nAffine(16) -> Expr1\n  -> Affine(10) -> SoftmaxWithLoss\n") in result.text
    x = images.reshape(len(images), 784)
    want = _session(model).run(None, {"input.1": x})[0]
    assert np.abs(api.trained(result.spec_path, result.weights_path).probabilities(x) - want).max() <= 1e-5
    assert check_network(specc.compile(result.text, dtype="float64"), batch=4, limit=8).passed


def test_an_element_wise_operator_specc_has_no_layer_for_imports_as_an_expression(tmp_path, images):
    middle = [helper.make_node("Neg", ["/h"], ["/n"], name="/neg"),
              helper.make_node("Exp", ["/n"], ["/e"], name="/exp"),
              helper.make_node("Max", ["/e", "cap"], ["/m"], name="/max")]
    nodes, inits = _dense_around(middle, np.random.default_rng(6))
    model = _model(nodes, {**inits, "cap": np.array(0.25)}, in_shape=("N", 784))
    onnx.save(model, str(tmp_path / "e.onnx"))
    result = imported(tmp_path / "e.onnx", tmp_path / "e.net")
    assert "layer Expr1 = max(exp(-x), 0.25)\n" in result.text  # one layer for the run of element-wise nodes
    assert "Affine(16) -> Expr1\n" in result.text
    x = images.reshape(len(images), 784)
    want = _session(model).run(None, {"input.1": x})[0]
    assert np.abs(api.trained(result.spec_path, result.weights_path).probabilities(x) - want).max() <= 1e-5


def test_prelu_and_gelu_come_back_as_one_expression_layer_with_the_slopes_as_its_parameter(tmp_path, images):
    net = _trained_like_text(tmp_path, SPECS["prelu_gelu_dense.net"])
    (tmp_path / "m.onnx").write_bytes(to_onnx(net).SerializeToString())
    result = imported(tmp_path / "m.onnx", tmp_path / "back.net")
    # PReLU's output is read three times by GELU: named once, by a let
    assert ("layer Expr1 { param p1[50] = 0; let t1 = max(x, 0.0) + (p1 * min(x, 0.0)); "
            "y = (0.5 * t1) * (1.0 + tanh(0.7978849 * (t1 + (0.044715 * (t1 ** 3.0))))) }\n") in result.text
    assert np.array_equal(result.net.params[result.net.checked.layers[1].names["p1"]], net.params["a1"])
    x = _inputs(net, images)
    assert np.abs(result.net.probabilities(x) - net.probabilities(x)).max() <= 1e-6


def _trained_like_text(tmp_path, text: str) -> specc.Network:
    path = tmp_path / "m.net"
    path.write_text(text)
    return _trained_like(path)


def test_an_element_wise_branch_with_a_constant_that_does_not_broadcast_is_refused_naming_the_node(tmp_path):
    middle = [helper.make_node("Sigmoid", ["/h"], ["/s"], name="/sig"),
              helper.make_node("Mul", ["/s", "scale"], ["/ss"], name="/scale"),
              helper.make_node("Mul", ["/h", "/ss"], ["/m"], name="/gate")]
    nodes, inits = _dense_around(middle, np.random.default_rng(7))
    onnx.save(_model(nodes, {**inits, "scale": np.ones((16, 16))}, in_shape=("N", 784)), str(tmp_path / "v.onnx"))
    r = _run("import", tmp_path / "v.onnx", "-o", tmp_path / "v.net")
    assert r.code == 2 and "Traceback" not in r.err and not (tmp_path / "v.net").exists()
    assert "'/scale' (Mul)" in r.err and "its constant 'scale' has shape [16, 16]" in r.err and "[16]" in r.err


@st.composite
def _element_wise_graphs(draw):
    """Gemm(8) -> a random DAG of element-wise nodes (its loose ends added together) -> Gemm(4)."""
    inits = {"W1": np.full((8, 12), 0.05), "b1": np.linspace(-0.5, 0.5, 8), "W2": np.full((4, 8), 0.1),
             "b2": np.zeros(4)}
    nodes = [helper.make_node("Gemm", ["x", "W1", "b1"], ["h"], name="fc1", transB=1)]
    values = ["h"]
    for k in range(draw(st.integers(1, 6))):
        a, b = draw(st.sampled_from(values)), draw(st.sampled_from(values))
        kind = draw(st.sampled_from(["Sigmoid", "Tanh", "Relu", "Neg", "Exp", "Sqrt", "Add", "Sub", "Mul", "Div",
                                     "const"]))
        if kind in ("Sqrt", "Div"):  # kept in their domain: sqrt of a sigmoid, a divisor of 2 + sigmoid
            nodes.append(helper.make_node("Sigmoid", [b], [f"s{k}"], name=f"s{k}"))
            if kind == "Sqrt":
                nodes.append(helper.make_node("Sqrt", [f"s{k}"], [f"v{k}"], name=f"n{k}"))
            else:
                inits[f"two{k}"] = np.array(2.0)
                nodes.append(helper.make_node("Add", [f"s{k}", f"two{k}"], [f"d{k}"], name=f"d{k}"))
                nodes.append(helper.make_node("Div", [a, f"d{k}"], [f"v{k}"], name=f"n{k}"))
        elif kind == "const":
            inits[f"c{k}"] = np.linspace(-1, 1, 8).reshape(draw(st.sampled_from([(8,), (1, 8)])))
            op = draw(st.sampled_from(["Add", "Mul", "Sub"]))
            nodes.append(helper.make_node(op, draw(st.permutations([a, f"c{k}"])), [f"v{k}"], name=f"n{k}"))
        elif kind in ("Add", "Sub", "Mul"):
            nodes.append(helper.make_node(kind, [a, b], [f"v{k}"], name=f"n{k}"))
        else:
            nodes.append(helper.make_node(kind, [a], [f"v{k}"], name=f"n{k}"))
        values.append(f"v{k}")
    last, read = values[-1], {i for n in nodes for i in n.input}
    for v in values[:-1]:
        if v not in read:
            nodes.append(helper.make_node("Add", [last, v], [f"{last}+"], name=f"{last}+"))
            last = f"{last}+"
    nodes.append(helper.make_node("Gemm", [last, "W2", "b2"], ["o"], name="fc2", transB=1))
    return _model(nodes, inits, in_shape=("N", 12), out_shape=("N", 4), input_name="x")


@settings(max_examples=int(os.environ.get("SPECC_FUZZ_EXAMPLES", "30")), deadline=None,
          derandomize="SPECC_FUZZ_EXAMPLES" not in os.environ)
@given(_element_wise_graphs())
def test_random_element_wise_graphs_import_and_predict_as_onnxruntime(model):
    with tempfile.TemporaryDirectory() as d:
        onnx.save(model, f"{d}/m.onnx")
        result = imported(f"{d}/m.onnx", f"{d}/m.net")
        x = np.random.default_rng(0).normal(0, 1, (5, 12)).astype(np.float32)
        want = _session(model).run(None, {"x": x})[0]
        got = api.trained(result.spec_path, result.weights_path).predict(x)
        assert np.allclose(got, want, rtol=1e-4, atol=1e-5), result.text


def test_a_power_whose_exponent_is_an_array_is_refused_naming_the_node(tmp_path):
    middle = [helper.make_node("Sigmoid", ["/h"], ["/s"], name="/sig"),
              helper.make_node("Pow", ["/s", "p"], ["/m"], name="/pow")]
    nodes, inits = _dense_around(middle, np.random.default_rng(8))
    onnx.save(_model(nodes, {**inits, "p": np.full(16, 2.0)}, in_shape=("N", 784)), str(tmp_path / "p.onnx"))
    r = _run("import", tmp_path / "p.onnx", "-o", tmp_path / "p.net")
    assert r.code == 2 and "Traceback" not in r.err and not (tmp_path / "p.net").exists()
    assert "'/pow' (Pow)" in r.err and "its constant 'p' has shape [16]" in r.err and "exponent" in r.err
