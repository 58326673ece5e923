"""The battery run on every registered layer: shape rule, parameter count, float64 central
differences for the input and every parameter, purity (x and dy never modified), and the
generated code of each layer against its reference forward/backward.

A layer added to specc.layers.REGISTRY is picked up here; until it has entries in SAMPLES
its cases fail with a message saying so (they are never skipped silently).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

import specc
from specc.gradcheck import check_layer
from specc.layers import REGISTRY
from specc.layers.base import Labels, Layer, Runtime
from specc.layers.windows import padding_only
from specc.text import shape_text

N = 3  # samples per batch; BatchNorm needs more than one
H = 1e-6  # central-difference step


@dataclass(frozen=True)
class Sample:
    """One way to use a layer: arguments as written, the shape reaching it, and what it must give
    (worked out by hand, so the shape rule and the parameter count have an independent oracle)."""

    args: dict[str, Any]
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    params: int
    note: str = ""  # what this sample exercises; shown in the test id


SAMPLES: dict[str, list[Sample]] = {
    "Affine": [
        Sample({"out": 5}, (7,), (5,), 7 * 5 + 5, "vector"),
        Sample({"in": 6, "out": 4, "init": "xavier"}, (6,), (4,), 28, "declared in"),
        Sample({"out": 4, "init": 0.1}, (2, 3, 3), (4,), 18 * 4 + 4, "image input is flattened"),
    ],
    "ReLU": [Sample({}, (6,), (6,), 0), Sample({}, (2, 3, 3), (2, 3, 3), 0, "image")],
    "LeakyReLU": [Sample({}, (6,), (6,), 0), Sample({"alpha": 0.2}, (2, 3, 3), (2, 3, 3), 0, "image, alpha 0.2"),
                  Sample({"alpha": 0.0}, (5,), (5,), 0, "alpha 0 is ReLU")],
    "Sigmoid": [Sample({}, (6,), (6,), 0), Sample({}, (2, 3, 3), (2, 3, 3), 0, "image")],
    "Tanh": [Sample({}, (6,), (6,), 0)],
    "SoftmaxWithLoss": [Sample({}, (5,), (5,), 0)],
    "MeanSquaredError": [Sample({}, (4,), (4,), 0)],
    "BatchNorm": [
        Sample({}, (5,), (5,), 10, "vectors"),
        Sample({"momentum": 0.8, "eps": 1e-5}, (3, 4, 4), (3, 4, 4), 6, "images, per channel"),
    ],
    "Dropout": [
        Sample({"ratio": 0.3}, (8,), (8,), 0, "vectors"),
        Sample({}, (2, 3, 3), (2, 3, 3), 0, "images"),
        Sample({"ratio": 0.3, "scale": "test"}, (8,), (8,), 0, "the book's scale"),
    ],
    "Convolution": [
        Sample({"filters": 3, "kernel": 3}, (2, 6, 6), (3, 4, 4), 3 * 2 * 9 + 3),
        Sample({"filters": 4, "kernel": 3, "stride": 2, "pad": 1}, (2, 7, 7), (4, 4, 4), 4 * 2 * 9 + 4,
               "stride 2, pad 1"),
        Sample({"filters": 2, "kernel": 1, "init": "he"}, (3, 2, 5), (2, 2, 5), 2 * 3 + 2, "1x1, not square"),
    ],
    "Pooling": [
        Sample({"size": 2}, (2, 6, 6), (2, 3, 3), 0),
        Sample({"size": 3, "stride": 2, "pad": 1}, (2, 7, 7), (2, 4, 4), 0, "pad 1, overlapping"),
        Sample({"size": 2, "stride": 1}, (1, 4, 5), (1, 3, 4), 0, "stride 1, not square"),
        Sample({"size": 3}, (2, 6, 3), (2, 2, 1), 0, "tiles, not square"),
        Sample({"size": 1}, (2, 3, 3), (2, 3, 3), 0, "size 1"),
    ],
    "AvgPooling": [
        Sample({"size": 2}, (2, 6, 6), (2, 3, 3), 0, "tiles"),
        Sample({"size": 3, "stride": 2, "pad": 1}, (2, 7, 7), (2, 4, 4), 0, "pad 1, overlapping"),
        Sample({"size": 2, "stride": 1}, (1, 4, 5), (1, 3, 4), 0, "stride 1, not square"),
    ],
    "Flatten": [Sample({}, (2, 3, 4), (24,), 0)],
    # layers written as expressions (EXPRESSIONS below)
    "Swish": [Sample({}, (6,), (6,), 0), Sample({}, (2, 3, 3), (2, 3, 3), 0, "image")],
    "PReLU": [Sample({}, (6,), (6,), 6), Sample({"init_a": 0.1}, (4,), (4,), 4, "init_a 0.1")],
    "Dense": [Sample({"n": 4}, (7,), (4,), 7 * 4 + 4)],
    "GELU": [Sample({}, (5,), (5,), 0)],
    "ChannelScale": [Sample({"c": 2}, (2, 3, 3), (2, 3, 3), 4, "per channel, broadcast over h and w")],
}

# Layers a .net file defines as expressions (specc.expr) go through the same battery: their backward
# is derived, so central differences are its oracle.
EXPRESSIONS = {
    "Swish": "layer Swish = x * sigmoid(x)",
    "PReLU": "layer PReLU(init_a=0.25) {\n  param a[in] = init_a\n  y = max(x, 0) + a * min(x, 0)\n}",
    "Dense": "layer Dense(n) {\n  param W[in, n] = he\n  param b[n] = 0\n  y = x @ W + b\n}",
    "GELU": "layer GELU = 0.5 * x * (1 + tanh(0.7978845608028654 * (x + 0.044715 * x ** 3)))",
    "ChannelScale": "layer ChannelScale(c) {\n  param s[c, 1, 1] = 1\n  param t[c, 1, 1] = 0\n"
                    "  y = x * s + t\n}",
}


def _is_loss(name: str) -> bool:
    return name in REGISTRY and REGISTRY[name].is_loss


def _cases():
    for name in [*REGISTRY, *EXPRESSIONS]:
        for i in range(len(SAMPLES.get(name, [None]))):
            note = SAMPLES[name][i].note if name in SAMPLES else ""
            tag = "-" + note.replace(", ", "-").replace(" ", "_") if note else ""
            yield pytest.param(name, i, id=f"{name}-{i}{tag}")


CASES = list(_cases())


def sample(name: str, i: int) -> Sample:
    if name not in SAMPLES:
        pytest.fail(f"layer {name} is registered but has no sample arguments: add it to SAMPLES in {__file__}")
    return SAMPLES[name][i]


def _expression_layer(name: str, s: Sample) -> Layer:
    from specc import syntax
    from specc.expr.lower import lower_expression
    from specc.layers.expression import layer_type
    from specc.parse import parse
    from specc.source import Source
    d = next(x for x in parse(Source("t.net", EXPRESSIONS[name])).statements if isinstance(x, syntax.LayerDef))
    args = {p.name: p.default.value for p in d.params if isinstance(p.default, syntax.Number)}
    args.update(s.args)
    member, found = lower_expression(d, {k: (v, d.span) for k, v in args.items()})
    assert member is not None, found
    return layer_type(name, member, tuple(args))(args, s.in_shape)


def build(name: str, s: Sample) -> Layer:
    """The layer, its arguments' defaults filled in as the front end fills them."""
    if name in EXPRESSIONS:
        return _expression_layer(name, s)
    cls = REGISTRY[name]
    args = dict(s.args)
    for a in cls.signature:
        if a.name not in args:
            args[a.name] = a.default_for(args)
    return cls(args, s.in_shape)


def arrays(layer: Layer, seed: int = 0):
    """Input, parameters (random, not their init: ones and zeros hide mistakes) and state."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, *layer.in_shape))
    params = {k: rng.standard_normal(shape) for k, shape in layer.param_shapes().items()}
    state = {k: rng.standard_normal(shape) for k, shape in layer.buffer_shapes().items()}
    if "running_var" in state:
        state["running_var"] = rng.uniform(0.5, 2.0, layer.buffer_shapes()["running_var"])
    return x, params, state


def labels(layer: Layer, rng: np.random.Generator):
    k = layer.out_shape[0]
    return rng.integers(0, k, N) if type(layer).labels is Labels.CLASSES else rng.standard_normal((N, k))


def runner(layer: Layer, params, state, train: bool, seed: int = 7):
    """forward(x) with the same random stream and state every call (Dropout's mask, BatchNorm's statistics)."""
    saved = {k: v.copy() for k, v in state.items()}

    def run(x):
        for k, v in saved.items():
            np.copyto(state[k], v)
        return layer.forward(params, x, train, Runtime(np.random.default_rng(seed), state))

    return run


def numerical(f, array: np.ndarray, h: float = H) -> np.ndarray:
    """Central differences of the scalar f() with respect to every element of array (changed in place)."""
    flat = array.reshape(-1)
    assert np.shares_memory(flat, array)
    out = np.empty(array.size)
    for i in range(array.size):
        old = flat[i]
        flat[i] = old + h
        plus = f()
        flat[i] = old - h
        minus = f()
        flat[i] = old
        out[i] = (plus - minus) / (2 * h)
    return out.reshape(array.shape)


def assert_gradient(analytic, numeric, what: str) -> None:
    analytic = np.asarray(analytic, np.float64)
    assert analytic.shape == numeric.shape, what
    err = np.abs(analytic - numeric).max()
    scale = max(np.abs(analytic).max(), np.abs(numeric).max())
    assert err <= 1e-6 * scale + 1e-8, f"{what}: max abs error {err:.3e}, scale {scale:.3e}"


# --- coverage --------------------------------------------------------------------------------------

def test_every_registered_layer_has_samples():
    missing = sorted(set(REGISTRY) - set(SAMPLES))
    assert not missing, f"add sample arguments for {missing} to SAMPLES"
    assert not set(SAMPLES) - set(REGISTRY) - set(EXPRESSIONS), "SAMPLES names a layer that is not registered"
    assert not set(EXPRESSIONS) - set(SAMPLES), "add samples for every expression layer"


# --- shape rule and parameter count -------------------------------------------------------------

@pytest.mark.parametrize("name,i", CASES)
def test_shape_rule_and_parameter_count(name, i):
    s = sample(name, i)
    layer = build(name, s)
    assert layer.out_shape == s.out_shape
    assert layer.parameter_count() == s.params
    x, params, state = arrays(layer)
    for train in (True, False):
        y, backprop = layer.forward(params, x, train, Runtime(np.random.default_rng(0), state))
        assert y.shape == (N, *layer.out_shape)
        assert y.dtype == np.float64
        if layer.is_loss:
            continue
        dx, grads = backprop(np.ones_like(y))
        assert dx.shape == x.shape
        assert set(grads) == set(layer.param_shapes())
        assert {k: g.shape for k, g in grads.items()} == layer.param_shapes()
    assert sum(v.size for v in params.values()) == s.params


def _one_layer_network(name: str, s: Sample) -> str:
    """The layer alone, with a loss after it when it is not one (Affine flattens images for it)."""
    shape = shape_text(s.in_shape)
    chain = _call(name, s.args)
    if not _is_loss(name):
        chain += " -> SoftmaxWithLoss" if len(s.out_shape) == 1 else " -> Flatten -> SoftmaxWithLoss"
    return f"{EXPRESSIONS.get(name, '')}\ninput {shape}\n{chain}\n"


def _call(name: str, args: dict[str, Any]) -> str:
    if not args:
        return name
    return f"{name}({', '.join(f'{k}={v!r}' if not isinstance(v, str) else f'{k}={v}' for k, v in args.items())})"


@pytest.mark.parametrize("name,i", CASES)
def test_summary_reports_the_same_shape_and_parameters(name, i):
    s = sample(name, i)
    checked = specc.check_text(_one_layer_network(name, s))
    row = specc.summary(checked).rows[0]
    assert row.params == s.params
    assert tuple(row.output) == s.out_shape
    assert checked.layers[0].layer.args == build(name, s).args  # the front end fills the same defaults


# --- gradients ----------------------------------------------------------------------------------

@pytest.mark.parametrize("train", [True, False], ids=["train", "inference"])
@pytest.mark.parametrize("name,i", CASES)
def test_central_differences(name, i, train):
    """Backprop of sum(y * dy) (or of the loss) against central differences, for x and every parameter.

    Regression (inference): BatchNorm's backward used the batch-statistics formula even when the
    forward had normalised by the running statistics, so its dx was wrong there."""
    s = sample(name, i)
    layer = build(name, s)
    x, params, state = arrays(layer, seed=i)
    rng = np.random.default_rng(100 + i)
    if layer.is_loss:
        t = labels(layer, rng)
        value, back = layer.loss(x, t)
        assert_gradient(back(), numerical(lambda: layer.loss(x, t)[0], x), f"{name} d loss / dx")
        return
    run = runner(layer, params, state, train)
    y, backprop = run(x)
    dy = rng.standard_normal(y.shape)
    dx, grads = backprop(dy)

    def f():
        return float(np.vdot(run(x)[0], dy))

    assert_gradient(dx, numerical(f, x), f"{name} dx")
    for k, value in params.items():
        assert_gradient(grads[k], numerical(f, value), f"{name} d{k}")


@pytest.mark.parametrize("name,i", CASES)
def test_check_layer_agrees(name, i):
    """specc.gradcheck.check_layer passes on every layer (it is what `specc gradcheck` blames with)."""
    s = sample(name, i)
    layer = build(name, s)
    x, params, state = arrays(layer, seed=i)
    results = check_layer(layer, x, params, state, train=True, seed=50 + i)  # not arrays()' seed: dy != x
    assert [r.name for r in results] == ["input", *params]
    assert all(r.passed for r in results), results
    assert all(r.checked == v.size for r, v in zip(results, [x, *params.values()]))


# --- purity: x and dy are never modified ------------------------------------------------------------

@pytest.mark.parametrize("train", [True, False], ids=["train", "inference"])
@pytest.mark.parametrize("name,i", CASES)
def test_forward_and_backward_modify_neither_x_nor_dy(name, i, train):
    s = sample(name, i)
    layer = build(name, s)
    x, params, state = arrays(layer, seed=i)
    x_before = x.copy()
    params_before = {k: v.copy() for k, v in params.items()}
    rng = np.random.default_rng(i)
    if layer.is_loss:
        t = labels(layer, rng)
        t_before = t.copy()
        _, back = layer.loss(x, t)
        back()
        back()
        assert np.array_equal(x, x_before) and np.array_equal(t, t_before)
        return
    y, backprop = layer.forward(params, x, train, Runtime(rng, state))
    y_before = y.copy()
    assert np.array_equal(x, x_before), "forward modified its input"
    dy = rng.standard_normal(y.shape)
    dy_before = dy.copy()
    dx, grads = backprop(dy)
    dx, grads = dx.copy(), {k: g.copy() for k, g in grads.items()}
    assert np.array_equal(dy, dy_before), "backward modified its upstream gradient"
    assert np.array_equal(x, x_before), "backward modified the input"
    assert np.array_equal(y, y_before), "backward modified the output"
    assert all(np.array_equal(v, params_before[k]) for k, v in params.items())
    # no hidden state: a second backward on the same dy gives the same gradients
    dx2, grads2 = backprop(dy)
    assert np.array_equal(dx, dx2)
    assert all(np.array_equal(grads[k], grads2[k]) for k in grads)
    assert np.array_equal(dy, dy_before)


def test_a_mutating_backward_is_caught():
    """The purity test above would catch the book's Relu.backward, which writes into dout."""
    layer = build("ReLU", SAMPLES["ReLU"][0])
    x, params, state = arrays(layer)

    def book_relu(p, x, train, rt):
        mask = x <= 0
        y = x.copy()
        y[mask] = 0

        def backprop(dout):
            dout[mask] = 0
            return dout, {}

        return y, backprop

    y, backprop = book_relu(params, x, True, None)
    dy = np.ones_like(y)
    before = dy.copy()
    backprop(dy)
    assert not np.array_equal(dy, before)
    layer.forward = book_relu
    results = check_layer(layer, x, params, state)
    assert [(r.name, r.passed) for r in results] == [("input", True), ("dy (modified in place)", False)]


# --- independent oracles for the layers with arithmetic of their own -----------------------------------

def _naive_conv(x, w, b, stride, pad):
    n, c, h, wd = x.shape
    f, _, k, _ = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    oh, ow = (h + 2 * pad - k) // stride + 1, (wd + 2 * pad - k) // stride + 1
    y = np.empty((n, f, oh, ow))
    for i in range(oh):
        for j in range(ow):
            patch = xp[:, :, i * stride:i * stride + k, j * stride:j * stride + k]
            y[:, :, i, j] = np.tensordot(patch, w, axes=([1, 2, 3], [1, 2, 3])) + b
    return y


def _naive_pool(x, size, stride, pad):
    n, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)), constant_values=-np.inf)
    oh, ow = (h + 2 * pad - size) // stride + 1, (w + 2 * pad - size) // stride + 1
    y = np.empty((n, c, oh, ow))
    for i in range(oh):
        for j in range(ow):
            y[:, :, i, j] = xp[:, :, i * stride:i * stride + size, j * stride:j * stride + size].max(axis=(2, 3))
    return y


@pytest.mark.parametrize("i", range(len(SAMPLES["Convolution"])))
def test_convolution_matches_a_loop(i):
    layer = build("Convolution", SAMPLES["Convolution"][i])
    x, p, _ = arrays(layer)
    y, _ = layer.forward(p, x, False, Runtime(None, {}))
    a = layer.args
    np.testing.assert_allclose(y, _naive_conv(x, p["W"], p["b"], a["stride"], a["pad"]), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("i", range(len(SAMPLES["Pooling"])))
def test_pooling_matches_a_loop(i):
    layer = build("Pooling", SAMPLES["Pooling"][i])
    x, p, _ = arrays(layer)
    y, back = layer.forward(p, x, False, Runtime(None, {}))
    a = layer.args
    assert np.array_equal(y, _naive_pool(x, a["size"], a["stride"], a["pad"]))
    dx, _ = back(np.ones_like(y))
    # every output sends its gradient to exactly one input, one of its window's maxima
    assert dx.sum() == y.size
    assert set(np.unique(x[dx > 0])) <= set(np.unique(y))


@pytest.mark.parametrize("size,stride,pad,blind", [(2, 2, 2, 2), (1, 1, 1, 2), (3, 3, 3, 2), (2, 1, 2, 2)])
def test_max_pooling_whose_windows_hold_padding_alone_is_refused(size, stride, pad, blind):
    # padded cells never win (-inf), so a window of padding alone would put -inf into the network
    text = f"input 1x6x6\nPooling({size}, stride={stride}, pad={pad}) -> Affine(2) -> SoftmaxWithLoss"
    with pytest.raises(specc.SpecError) as info:
        specc.check_text(text)
    (d,) = info.value.diagnostics
    assert d.code == "shape" and f"{blind} of Pooling's" in d.message
    assert (d.span.line, d.span.col) == (2, text.splitlines()[1].index("pad=") + 1)
    assert d.hint == f"give pad at most {size - 1} (max pooling usually takes none)"


@pytest.mark.parametrize("size,stride,pad,h", [(3, 1, 2, 6), (3, 2, 2, 7), (2, 2, 1, 6), (4, 4, 3, 6)])
def test_max_pooling_padded_below_its_size_has_no_window_of_padding_alone(size, stride, pad, h):
    net = specc.compile(f"input 1x{h}x{h}\nPooling({size}, stride={stride}, pad={pad}) -> Affine(2) -> SoftmaxWithLoss",
                        dtype="float64")
    x = -np.random.default_rng(0).random((3, 1, h, h))  # negative inputs: padded zeros would win
    y = net.predict(x)
    assert np.isfinite(y).all()


def test_affine_and_activations_match_formulas():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, 2, 3))
    affine = build("Affine", SAMPLES["Affine"][2])
    p = {"W": rng.standard_normal((6, 4)), "b": rng.standard_normal(4)}
    y, _ = affine.forward(p, x, False, Runtime(None, {}))
    np.testing.assert_allclose(y, x.reshape(N, 6) @ p["W"] + p["b"], rtol=1e-13)
    v = rng.standard_normal((N, 6)) * 30  # large values: sigmoid must not overflow
    formulas = {"ReLU": np.maximum(v, 0), "Sigmoid": 1 / (1 + np.exp(-v)), "Tanh": np.tanh(v)}
    for name, expected in formulas.items():
        layer = REGISTRY[name]({}, (6,))
        with np.errstate(over="raise"):
            y, _ = layer.forward({}, v, False, Runtime(None, {}))
        np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-15)


def test_batchnorm_normalises_and_tracks_running_statistics():
    layer = build("BatchNorm", SAMPLES["BatchNorm"][1])  # images, momentum 0.8
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3, 4, 4)) * 3 + 5
    gamma, beta = np.array([1.0, 2.0, 0.5]), np.array([0.0, -1.0, 3.0])
    state = {"running_mean": np.zeros(3), "running_var": np.ones(3)}
    y, _ = layer.forward({"gamma": gamma, "beta": beta}, x, True, Runtime(None, state))
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), beta, atol=1e-12)
    np.testing.assert_allclose(y.std(axis=(0, 2, 3)), gamma, rtol=1e-5)
    np.testing.assert_allclose(state["running_mean"], 0.2 * x.mean(axis=(0, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(state["running_var"], 0.8 + 0.2 * x.var(axis=(0, 2, 3)), rtol=1e-12)
    # inference uses the running statistics, and leaves them alone
    before = {k: v.copy() for k, v in state.items()}
    y, _ = layer.forward({"gamma": gamma, "beta": beta}, x, False, Runtime(None, state))
    view = (1, 3, 1, 1)
    expected = (x - before["running_mean"].reshape(view)) / np.sqrt(before["running_var"].reshape(view) + 1e-5)
    np.testing.assert_allclose(y, expected * gamma.reshape(view) + beta.reshape(view), rtol=1e-12)
    assert all(np.array_equal(state[k], before[k]) for k in state)


def test_dropout_masks_in_training_and_is_the_identity_in_inference():
    layer = build("Dropout", Sample({"ratio": 0.3}, (1000,), (1000,), 0))
    x = np.random.default_rng(0).uniform(1, 2, (N, 1000))
    y1, back = layer.forward({}, x, True, Runtime(np.random.default_rng(5), {}))
    y2, _ = layer.forward({}, x, True, Runtime(np.random.default_rng(5), {}))
    assert np.array_equal(y1, y2), "the same random stream gives the same mask"
    kept = y1 != 0
    assert 0.65 < kept.mean() < 0.75
    np.testing.assert_allclose(y1[kept], x[kept] / 0.7, rtol=1e-15)
    dx, _ = back(np.ones_like(x))
    np.testing.assert_allclose(dx, kept / 0.7, rtol=1e-15)
    y3, _ = layer.forward({}, x, True, Runtime(np.random.default_rng(6), {}))
    assert not np.array_equal(y1, y3)
    y, back = layer.forward({}, x, False, Runtime(np.random.default_rng(5), {}))
    assert np.array_equal(y, x)


@pytest.mark.parametrize("name", ["SoftmaxWithLoss", "MeanSquaredError"])
def test_losses_match_formulas(name):
    rng = np.random.default_rng(0)
    layer = REGISTRY[name]({}, (5,))
    x = rng.standard_normal((N, 5)) * 50  # large scores: the loss stays exact and finite
    t = labels(layer, rng)
    value, back = layer.loss(x, t)
    if name == "SoftmaxWithLoss":
        shifted = x - x.max(axis=1, keepdims=True)
        logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        expected = -logp[np.arange(N), t].mean()
        grad = np.exp(logp)
        grad[np.arange(N), t] -= 1
        grad /= N
    else:
        expected = 0.5 * ((x - t) ** 2).sum() / N
        grad = (x - t) / N
    assert value == pytest.approx(expected, rel=1e-12)
    np.testing.assert_allclose(back(), grad, rtol=1e-10, atol=1e-15)


# --- the generated code of each layer against its reference path ---------------------------------------

def _context_prefix(s: Sample, context: str) -> str:
    """Layers that put the sample's input shape in front of it: a head (so an activation fuses
    into it), or a head and an activation (so nothing fuses into the head)."""
    if context == "first":
        return ""
    image = len(s.in_shape) == 3
    head = f"Convolution({s.in_shape[0]}, kernel=1)" if image else f"Affine({s.in_shape[0]})"
    return head + (" -> Tanh" if context == "after_activation" else "") + " -> "


CONTEXTS = ["first", "after_head", "after_activation", "before_activation"]


def _network_text(name: str, s: Sample, context: str) -> str | None:
    if _is_loss(name) and context == "before_activation":
        return None
    chain = _context_prefix(s, "first" if context == "before_activation" else context) + _call(name, s.args)
    if not _is_loss(name):
        if context == "before_activation":
            chain += " -> ReLU"
        chain += " -> Affine(3) -> SoftmaxWithLoss"
    return f"{EXPRESSIONS.get(name, '')}\ninput {shape_text(s.in_shape)}\n{chain}\n"


def close(a, b, what: str, tol: float = 1e-10) -> None:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert a.shape == b.shape, what
    err = np.abs(a - b).max() if a.size else 0.0
    assert err <= tol * max(1.0, np.abs(b).max() if b.size else 0.0), f"{what}: differ by {err:.3e}"


def twins(text: str, seed: int = 3):
    """The fused and the unfused network of one spec, float64, same seed."""
    return (specc.compile(text, dtype="float64", fuse=True, seed=seed),
            specc.compile(text, dtype="float64", fuse=False, seed=seed))


def _randomise(fused, unfused, rng):
    """Random values in both twins (the init's zeros and ones would hide mistakes)."""
    for k in fused.params:
        fused.params[k][...] = rng.standard_normal(fused.params[k].shape) * 0.5
        unfused.params[k][...] = fused.params[k]
    for k in fused.state:
        fused.state[k][...] = rng.uniform(0.5, 1.5, fused.state[k].shape)
        unfused.state[k][...] = fused.state[k]


@pytest.mark.parametrize("context", CONTEXTS)
@pytest.mark.parametrize("name,i", CASES)
def test_generated_code_matches_reference(name, i, context):
    s = sample(name, i)
    text = _network_text(name, s, context)
    if text is None:
        return
    fused, unfused = twins(text)
    assert fused._gen is not None and unfused._gen is None
    rng = np.random.default_rng(i)
    _randomise(fused, unfused, rng)
    x = rng.standard_normal((4, *s.in_shape))
    k = fused.loss_layer.out_shape[0]
    t = rng.integers(0, k, 4) if fused.plan.labels is Labels.CLASSES else rng.standard_normal((4, k))
    close(fused.predict(x), unfused.predict(x), "predict")
    close(fused.loss(x, t), unfused.loss(x, t), "loss")
    for step in range(2):  # twice: workspaces are reused, Dropout draws a new mask
        close(fused.predict(x, train_flg=True), unfused.predict(x, train_flg=True), "predict(train)")
        close(fused.loss(x, t, train_flg=True), unfused.loss(x, t, train_flg=True), "loss(train)")
        gf, gu = fused.gradient(x, t), unfused.gradient(x, t)
        assert gf.keys() == gu.keys() == fused.params.keys()
        for key in gf:
            close(gf[key], gu[key], f"gradient {key}")
        for key in fused.state:
            close(fused.state[key], unfused.state[key], f"state {key}")
    assert fused.rng.bit_generator.state == unfused.rng.bit_generator.state, "both drew as many numbers"


def test_the_books_dropout_keeps_values_while_training_and_scales_them_at_inference():
    """Dropout(scale="test") is the book's ch06 Dropout: x * mask while training (mask = u >= ratio, no
    1/(1-ratio)), x * (1 - ratio) at inference; the gradient is dy * mask. Fused and reference alike."""
    text = 'input 1000\nDropout(0.3, scale="test") -> Affine(2) -> SoftmaxWithLoss\n'
    x = np.random.default_rng(0).uniform(1, 2, (N, 1000))
    layer = build("Dropout", Sample({"ratio": 0.3, "scale": "test"}, (1000,), (1000,), 0))
    y, back = layer.forward({}, x, True, Runtime(np.random.default_rng(5), {}))
    kept = y != 0
    assert 0.65 < kept.mean() < 0.75
    assert np.array_equal(y[kept], x[kept])
    assert np.array_equal(back(np.ones_like(x))[0], kept.astype(float))
    y, _ = layer.forward({}, x, False, Runtime(np.random.default_rng(5), {}))
    assert np.array_equal(y, x * 0.7)
    for fuse in (True, False):
        net = specc.compile(text, dtype="float64", fuse=fuse, seed=2)
        w, b = net.params["W1"], net.params["b1"]
        np.testing.assert_allclose(net.predict(x), (0.7 * x) @ w + b, rtol=1e-12)
        state = net.rng.bit_generator.state
        scores = net.predict(x, train_flg=True)
        net.rng.bit_generator.state = state
        keep = net.rng.random(x.shape) >= 0.3  # the draw specc's Dropout makes
        np.testing.assert_allclose(scores, (x * keep) @ w + b, rtol=1e-12)


def test_generated_dropout_draws_in_float32():
    """Regression: the generated Dropout asked Generator.random for float64 into a float32 mask,
    so training any Dropout network at the default float32 raised TypeError."""
    text = "input 6\nAffine(8) -> ReLU -> Dropout(0.5) -> Affine(3) -> SoftmaxWithLoss\n"
    fused = specc.compile(text, dtype="float32", fuse=True, seed=1)
    unfused = specc.compile(text, dtype="float32", fuse=False, seed=1)
    x = np.random.default_rng(0).random((5, 6))
    t = np.array([0, 1, 2, 0, 1])
    gf, gu = fused.gradient(x, t), unfused.gradient(x, t)
    assert gf["W1"].dtype == np.float32
    for k in gf:
        np.testing.assert_allclose(gf[k], gu[k], rtol=1e-5, atol=1e-6)
    assert np.array_equal(fused.predict(x, True), unfused.predict(x, True))  # the same masks


@pytest.mark.parametrize("i", range(len(SAMPLES["Pooling"])))
def test_generated_pooling_sends_ties_to_the_first_maximum(i):
    """Windows with equal maxima (zeros after a ReLU, whole-number pixels) are the rule in a
    convnet: both paths send the gradient to the same one, the first."""
    s = SAMPLES["Pooling"][i]
    c = s.in_shape[0]
    text = (f"input {shape_text(s.in_shape)}\n"
            f"Convolution({c}, kernel=1) -> {_call('Pooling', s.args)} -> Affine(3) -> SoftmaxWithLoss\n")
    fused, unfused = twins(text)
    for net in (fused, unfused):  # the convolution passes its input through unchanged
        net.params["W1"][...] = np.eye(c).reshape(c, c, 1, 1)
        net.params["b1"][...] = 0
    rng = np.random.default_rng(i)
    x = rng.integers(0, 2, (4, *s.in_shape)).astype(float)
    t = rng.integers(0, 3, 4)
    gf, gu = fused.gradient(x, t), unfused.gradient(x, t)
    for key in gf:
        close(gf[key], gu[key], f"gradient {key}")


@pytest.mark.parametrize("k, chunk", [(2, 4), (2, 1), (3, 5), (2, 64)])
def test_tiled_max_pool_chunks_agree_with_a_loop_that_sends_ties_to_the_first_maximum(k, chunk):
    """specc.convpool's tiled max pooling, a few samples at a time (a partial last chunk too),
    against a loop over the windows: the maximum, and the gradient to the first maximum of each
    window in row-major order, on data full of ties (zeros and small whole numbers)."""
    from specc.convpool import tiled_max_pool, tiled_max_pool_backward

    rng = np.random.default_rng(k * 100 + chunk)
    n, c, oh, ow = 13, 3, 4, 5
    x = np.maximum(rng.integers(-2, 3, (n, c, oh * k, ow * k)), 0).astype(np.float32)
    dy = rng.standard_normal((n, c, oh, ow)).astype(np.float32)
    y, dx = np.empty_like(dy), np.empty_like(x)
    hit, taken = np.empty((chunk, c, oh, ow), bool), np.empty((chunk, c, oh, ow), bool)
    tiled_max_pool(x, k, chunk, y)
    tiled_max_pool_backward(x, y, dy, k, chunk, hit, taken, dx)
    want = np.zeros_like(x)
    for s in range(n):
        for ch in range(c):
            for i in range(oh):
                for j in range(ow):
                    window = x[s, ch, i * k:(i + 1) * k, j * k:(j + 1) * k]
                    r, q = divmod(int(np.argmax(window)), k)  # argmax: the first maximum, row by row
                    want[s, ch, i * k + r, j * k + q] = dy[s, ch, i, j]
    assert np.array_equal(y, _naive_pool(x, k, k, 0))
    assert np.array_equal(dx, want)


def test_padding_only_counts_the_windows_that_miss_the_image():
    # against the windows themselves, one by one
    for length in range(1, 8):
        for window in range(1, 5):
            for stride in range(1, 4):
                for pad in range(0, 7):
                    span = length + 2 * pad - window
                    if span < 0 or span % stride:
                        continue
                    out = span // stride + 1
                    blind = sum(1 for r in range(out)
                                if not set(range(r * stride - pad, r * stride - pad + window)) & set(range(length)))
                    assert padding_only(length, out, window, stride, pad) == blind, (length, window, stride, pad)
