"""Whole networks: gradient checks of every models/*.net on both paths, fused == unfused (also
through SGD steps), the book's interface, and runtime errors that point at the .net source."""
from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from helpers import MODELS, ROOT
from rich.console import Console

import specc
from specc.diagnostics import render
from specc.errors import DataError, RunError
from specc.gradcheck import check_network

PATHS = [pytest.param(True, id="fused"), pytest.param(False, id="unfused")]
BATCH = 4  # samples in the gradient checks' batch
SAMPLED = 12  # elements per parameter in the gradient checks


def shrink(model: Path, folder: Path) -> Path:
    """The model at small sizes, as an IR .json file: the same layers in the same order, with every
    layer size capped at 16, filters at 4 and images at 12x12. The model itself when the capped
    copy does not check (say, a kernel larger than the smaller image)."""
    doc = specc.ir_document(specc.read(model))
    if doc.get("input"):
        shape = doc["input"]["shape"]
        doc["input"]["shape"] = [min(shape[0], 16)] if len(shape) == 1 else [shape[0], *(min(d, 12) for d in shape[1:])]
    for layer in doc["layers"]:
        for key, limit in (("in", 16), ("out", 16), ("filters", 4)):
            if isinstance(layer["args"].get(key), int):
                layer["args"][key] = min(layer["args"][key], limit)
    path = folder / f"{model.stem}.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    try:
        specc.check_file(path)
    except specc.SpecError:
        return model
    return path


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("small")
    return {m.stem: shrink(m, folder) for m in MODELS}


def test_models_shrink(small):
    for stem in ("two_layer_net", "simple_conv_net", "multi_layer_net"):
        full, little = specc.load(ROOT / "models" / f"{stem}.net"), specc.load(small[stem])
        assert little.checked.parameter_count < full.checked.parameter_count / 10
        assert [c.spec.type for c in little.checked.layers] == [c.spec.type for c in full.checked.layers]
        assert little.loss_layer.out_shape == full.loss_layer.out_shape  # the classes stay


def load(model: Path, **kw) -> specc.Network:
    return specc.load(model, **{"dtype": "float64", "seed": 0, **kw})


def batch(net: specc.Network, n: int = BATCH, seed: int = 0):
    """Inputs in [0, 1) and index labels, the way the data sets give them."""
    rng = np.random.default_rng(seed)
    k = net.loss_layer.out_shape[0]
    return rng.random((n, *net.input_shape)), rng.integers(0, k, n)


def one_hot(t, k: int) -> np.ndarray:
    return np.eye(k)[t]


def close(a, b, what: str = "", tol: float = 1e-10) -> None:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert a.shape == b.shape, what
    err = float(np.abs(a - b).max()) if a.size else 0.0
    assert err <= tol * max(1.0, float(np.abs(b).max())), f"{what}: differ by {err:.3e}"


def rendered(error) -> str:
    console = Console(file=io.StringIO(), width=120, color_system=None, highlight=False)
    render(error, console)
    return console.file.getvalue()


def test_models_are_found():
    assert {"two_layer_net.net", "simple_conv_net.net", "multi_layer_net.net"} <= {m.name for m in MODELS}


# --- whole-network gradient checks ------------------------------------------------------------------

@pytest.mark.parametrize("fuse", PATHS)
@pytest.mark.parametrize("model", MODELS, ids=lambda p: p.stem)
def test_gradcheck_with_index_labels(small, model, fuse):
    net = load(small[model.stem], fuse=fuse)
    report = check_network(net, batch=BATCH, limit=SAMPLED)
    assert report.passed, [r for r in report.results if not r.passed]
    assert report.culprit is None
    assert [r.name for r in report.results] == list(net.params)


def _sampled_central_differences(net, x, t, name, idx, h=1e-6):
    """Central differences of the training-mode loss through the public interface only: the live
    net.params arrays, net.loss, and the Dropout stream rewound so every evaluation draws the
    same masks as the gradient did."""
    start = net.rng.bit_generator.state
    flat = net.params[name].reshape(-1)
    out = []
    for i in idx:
        old = flat[i]
        values = []
        for step in (h, -h):
            flat[i] = old + step
            net.rng.bit_generator.state = start
            values.append(net.loss(x, t, train_flg=True))
        flat[i] = old
        out.append((values[0] - values[1]) / (2 * h))
    net.rng.bit_generator.state = start
    return np.array(out)


@pytest.mark.parametrize("fuse", PATHS)
@pytest.mark.parametrize("model", MODELS, ids=lambda p: p.stem)
def test_gradcheck_with_one_hot_labels(small, model, fuse):
    net = load(small[model.stem], fuse=fuse, seed=1)
    # Biases start at zero, which puts a pre-activation exactly on ReLU's kink wherever a window sees
    # only padding and dead inputs (DeepConvNet's pad=2 convolution, shrunk to 4 filters): move them off it.
    for p in net.parameters():
        if not p.decay:
            p.value += np.random.default_rng(3).normal(0, 0.1, p.value.shape)
    x, t = batch(net, seed=1)
    t = one_hot(t, net.loss_layer.out_shape[0])
    rng = np.random.default_rng(2)
    start = net.rng.bit_generator.state
    state = {k: v.copy() for k, v in net.state.items()}
    grads = {k: g.copy() for k, g in net.gradient(x, t).items()}
    for k, v in state.items():  # the gradient's training pass moved BatchNorm's running statistics
        np.copyto(net.state[k], v)
    net.rng.bit_generator.state = start
    for name, value in net.params.items():
        idx = rng.choice(value.size, min(SAMPLED, value.size), replace=False)
        numeric = _sampled_central_differences(net, x, t, name, idx)
        analytic = grads[name].reshape(-1)[idx]
        err = np.abs(analytic - numeric).max()
        scale = max(np.abs(analytic).max(), np.abs(numeric).max())
        assert err <= 1e-5 * scale + 1e-8, f"{name}: error {err:.2e} at scale {scale:.2e}"


@pytest.mark.parametrize("model", MODELS, ids=lambda p: p.stem)
def test_one_hot_and_index_labels_give_the_same_loss_and_gradients(model):
    net = load(model)
    x, t = batch(net)
    hot = one_hot(t, net.loss_layer.out_shape[0])
    assert net.loss(x, t) == net.loss(x, hot)
    assert net.accuracy(x, t) == net.accuracy(x, hot)
    start = net.rng.bit_generator.state
    g1 = {k: v.copy() for k, v in net.gradient(x, t).items()}
    net.rng.bit_generator.state = start
    g2 = net.gradient(x, hot)
    assert all(np.array_equal(g1[k], g2[k]) for k in g1)


# --- fused == unfused --------------------------------------------------------------------------------

@pytest.mark.parametrize("model", MODELS, ids=lambda p: p.stem)
def test_fused_equals_unfused(model):
    fused, unfused = load(model, fuse=True, seed=4), load(model, fuse=False, seed=4)
    assert all(np.array_equal(fused.params[k], unfused.params[k]) for k in fused.params)
    x, t = batch(fused, n=4, seed=5)
    close(fused.predict(x), unfused.predict(x), "predict")
    close(fused.loss(x, t), unfused.loss(x, t), "loss")
    assert fused.accuracy(x, t) == unfused.accuracy(x, t)
    lr = 0.1
    for step in range(4):
        # training mode draws Dropout masks: the same seed and the same calls give the same masks
        close(fused.predict(x, train_flg=True), unfused.predict(x, train_flg=True), f"predict(train) {step}")
        close(fused.loss(x, t, train_flg=True), unfused.loss(x, t, train_flg=True), f"loss(train) {step}")
        grad_f, grad_u = fused.gradient(x, t), unfused.gradient(x, t)
        for k in fused.params:
            close(grad_f[k], grad_u[k], f"gradient {k}, step {step}")
        for k in fused.state:
            close(fused.state[k], unfused.state[k], f"{k}, step {step}")
        assert fused.rng.bit_generator.state == unfused.rng.bit_generator.state
        # the book's update
        for net, grad in ((fused, grad_f), (unfused, grad_u)):
            for k in net.params:
                net.params[k] -= lr * grad[k]
        for k in fused.params:
            close(fused.params[k], unfused.params[k], f"{k} after step {step}")
        close(fused.predict(x), unfused.predict(x), f"predict after step {step}")
        close(fused.loss(x, t), unfused.loss(x, t), f"loss after step {step}")


SCALED_SPECS = {
    "mse": "input 6\nAffine(4) -> Tanh -> Affine(3) -> MeanSquaredError",
    "batchnorm_dropout": "input 6\nAffine(5) -> BatchNorm -> ReLU -> Dropout(0.3) -> Affine(3) -> SoftmaxWithLoss",
    "conv": "input 2x6x6\nConvolution(3, kernel=3, pad=1) -> ReLU -> Pooling(2, stride=2)\n"
            "  -> Affine(3) -> SoftmaxWithLoss",
}


@pytest.mark.parametrize("fuse", PATHS)
@pytest.mark.parametrize("name", [*SCALED_SPECS, "two_layer_net"])
def test_backward_with_a_grad_scale_gives_the_scaled_gradients(name, fuse):
    """backward(x, t, grad_scale) writes the gradients of grad_scale times the loss (the trainer folds
    SGD's rate in so): the same loss, and gradients that equal the plain ones times the factor, weight
    decay's term included, on both paths, Dropout's masks drawn alike."""
    spec = (ROOT / "models" / "two_layer_net.net").read_text() if name == "two_layer_net" else SCALED_SPECS[name]
    plain, scaled = (specc.compile(spec, dtype="float64", fuse=fuse, seed=3) for _ in range(2))
    for net in (plain, scaled):
        net.weight_decay = 0.01
    x, t = batch(plain, n=5, seed=8)
    if name == "mse":
        t = np.random.default_rng(8).standard_normal((5, 3))
    for _ in range(2):
        loss = plain.backward(x, t)
        assert scaled.backward(x, t, 0.03) == loss
        # (atol: a bias before BatchNorm has the gradient 0, which both compute as rounding noise)
        top = max(float(np.abs(g).max()) for g in plain.grads.values())
        assert top > 0
        for k in plain.grads:
            np.testing.assert_allclose(scaled.grads[k], 0.03 * plain.grads[k], rtol=1e-13, atol=1e-15 * top,
                                       err_msg=k)


def test_dropout_masks_are_drawn_alike_and_matter():
    """The check above is not vacuous: MultiLayerNet's masks change its training-mode output,
    fused and unfused twins draw the same ones, and a twin with another seed draws others."""
    model = ROOT / "models" / "multi_layer_net.net"
    fused, unfused, other = load(model, fuse=True), load(model, fuse=False), load(model, fuse=False, seed=9)
    other.params = {k: v.copy() for k, v in fused.params.items()}
    x, _ = batch(fused)
    a, b, c = fused.predict(x, True), unfused.predict(x, True), other.predict(x, True)
    close(a, b, "same seed")
    assert np.abs(a - c).max() > 1e-3, "another seed draws other masks"


def test_float32_paths_agree():
    model = ROOT / "models" / "multi_layer_net.net"
    fused, unfused = load(model, dtype="float32"), load(model, dtype="float32", fuse=False)
    x, t = batch(fused, n=5)
    gf, gu = fused.gradient(x, t), unfused.gradient(x, t)
    for k in gf:
        assert gf[k].dtype == np.float32
        np.testing.assert_allclose(gf[k], gu[k], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(fused.predict(x), unfused.predict(x), rtol=1e-5, atol=1e-5)


# --- the book's interface ------------------------------------------------------------------------------

@pytest.mark.parametrize("fuse", PATHS)
def test_params_are_live_and_the_books_update_loop_learns(fuse):
    net = load(ROOT / "models" / "two_layer_net.net", fuse=fuse)
    x, t = batch(net, n=20)
    before = net.predict(x)
    net.params["W2"][0, 0] += 1.0  # in place
    changed = net.predict(x)
    assert not np.array_equal(changed, before)
    net.params["b2"] = net.params["b2"] + 1.0  # rebound to a new array
    close(net.predict(x), changed + 1.0, "rebound bias", tol=1e-12)
    net = load(ROOT / "models" / "two_layer_net.net", fuse=fuse)  # a fresh one learns
    first = net.loss(x, t)
    for _ in range(40):
        grad = net.gradient(x, t)
        for key in ("W1", "b1", "W2", "b2"):
            net.params[key] -= 0.1 * grad[key]
    assert net.loss(x, t) < 0.1 * first
    assert net.accuracy(x, t) == 1.0


def test_numerical_gradient_matches_gradient_on_a_small_network():
    """The book's numerical_gradient, every element, on a network small enough for it."""
    text = ("block Dense(n) = Affine(n) -> BatchNorm -> ReLU -> Dropout(0.2)\n"
            "input 1x4x4\nConvolution(2, kernel=3, pad=1) -> ReLU -> Pooling(2)\n"
            "  -> Dense(5) -> Affine(3) -> SoftmaxWithLoss\n")
    for fuse in (True, False):
        net = specc.compile(text, dtype="float64", fuse=fuse, seed=2)
        x, t = batch(net, n=4)
        numeric = net.numerical_gradient(x, t, h=1e-6)
        grads = net.gradient(x, t)  # uses the masks numerical_gradient used
        assert numeric.keys() == grads.keys()
        for k in grads:
            close(grads[k], numeric[k], f"{k} ({'fused' if fuse else 'unfused'})", tol=1e-6)


@pytest.mark.parametrize("fuse", PATHS)
def test_flat_and_image_shaped_inputs(fuse):
    for name in ("two_layer_net", "simple_conv_net"):
        net = load(ROOT / "models" / f"{name}.net", fuse=fuse)
        x = np.random.default_rng(0).random((3, 784))
        t = np.array([1, 2, 3])
        flat, image = net.predict(x), net.predict(x.reshape(3, 1, 28, 28))
        assert flat.shape == (3, 10)
        close(flat, image, name, tol=0)
        assert net.loss(x, t) == net.loss(x.reshape(3, 1, 28, 28), t)
        one = x.reshape(3, *net.input_shape)[0]
        close(net.predict(one), flat[:1], "one sample, without the batch axis", tol=1e-12)
        close(net.predict((x * 255).astype(np.uint8)), net.predict((x * 255).astype(np.uint8).astype(float)), "uint8")


@pytest.mark.parametrize("fuse", PATHS)
def test_accuracy_on_a_hand_made_example(fuse):
    net = specc.compile("Affine(2, 3) -> SoftmaxWithLoss", dtype="float64", fuse=fuse)
    net.params["W1"][...] = [[1, 0, 0], [0, 1, 0]]
    net.params["b1"][...] = [0, 0, 0.5]
    x = np.array([[2.0, 0.0], [0.0, 2.0], [0.0, 0.0], [2.0, 0.0], [0.2, 0.1]])
    # scores: [2, 0, .5] -> 0, [0, 2, .5] -> 1, [0, 0, .5] -> 2, [2, 0, .5] -> 0, [.2, .1, .5] -> 2
    np.testing.assert_array_equal(net.predict(x).argmax(axis=1), [0, 1, 2, 0, 2])
    t = np.array([0, 1, 2, 1, 0])
    assert net.accuracy(x, t) == 0.6
    assert net.accuracy(x, np.eye(3)[t]) == 0.6
    assert net.accuracy(x, t.astype(float)) == 0.6
    assert net.accuracy(x[:0], t[:0]) == 0.0


@pytest.mark.parametrize("fuse", PATHS)
def test_train_and_inference_modes_differ_and_are_deterministic(fuse):
    texts = {"dropout": "input 10\nAffine(20) -> ReLU -> Dropout(0.5) -> Affine(4) -> SoftmaxWithLoss\n",
             "batchnorm": "input 10\nAffine(20) -> BatchNorm -> ReLU -> Affine(4) -> SoftmaxWithLoss\n"}
    x = np.random.default_rng(0).random((6, 10)) * 3
    nets = {}
    for kind, text in texts.items():
        nets[kind] = a = specc.compile(text, dtype="float64", fuse=fuse, seed=5)
        b = specc.compile(text, dtype="float64", fuse=fuse, seed=5)
        assert np.array_equal(a.predict(x), a.predict(x)), kind
        train_a, train_b = a.predict(x, train_flg=True), b.predict(x, train_flg=True)
        assert np.array_equal(train_a, train_b), f"{kind}: the same seed gives the same training pass"
        assert np.abs(train_a - a.predict(x)).max() > 1e-3, f"{kind}: training and inference differ"
        assert np.array_equal(a.predict(x), b.predict(x))
    c = specc.compile(texts["dropout"], dtype="float64", fuse=fuse, seed=6)
    a = nets["dropout"]
    c.params = {k: v.copy() for k, v in a.params.items()}
    assert not np.array_equal(c.predict(x, train_flg=True), a.predict(x, train_flg=True))


def test_batchnorm_running_statistics_move_only_in_training():
    net = load(ROOT / "models" / "multi_layer_net.net")
    x, t = batch(net, n=8)
    before = {k: v.copy() for k, v in net.state.items()}
    net.predict(x)
    net.loss(x, t)
    net.accuracy(x, t)
    assert all(np.array_equal(net.state[k], before[k]) for k in before)
    net.gradient(x, t)
    assert all(not np.array_equal(net.state[k], before[k]) for k in before)


def test_gradient_is_fresh_for_each_call():
    net = load(ROOT / "models" / "two_layer_net.net")
    x, t = batch(net)
    g1 = {k: v.copy() for k, v in net.gradient(x, t).items()}
    g2 = net.gradient(x[:2], t[:2])
    assert not np.array_equal(g1["W2"], g2["W2"])
    g3 = net.gradient(x, t)
    assert all(np.array_equal(g1[k], g3[k]) for k in g1)


# --- runtime errors point at the source ---------------------------------------------------------------

def _where(model: Path, text: str) -> tuple[int, int]:
    """1-based line and column of the first `text` in a model file (outside comments)."""
    for n, line in enumerate(model.read_text().splitlines(), 1):
        if not line.lstrip().startswith("#") and text in line:
            return n, line.index(text) + 1
    raise AssertionError(f"{text!r} not in {model}")


@pytest.mark.parametrize("fuse", PATHS)
@pytest.mark.parametrize("name,anchor", [("two_layer_net", "Affine(784, 50)"), ("simple_conv_net", "input 1x28x28")])
def test_input_of_the_wrong_shape(name, anchor, fuse):
    model = ROOT / "models" / f"{name}.net"
    net = load(model, fuse=fuse)
    line, col = _where(model, anchor)
    for call in (lambda: net.predict(np.zeros((2, 783))), lambda: net.loss(np.zeros((2, 3, 28, 28)), [0, 1]),
                 lambda: net.gradient(np.zeros(5), [0]), lambda: net.accuracy(np.zeros((2, 28)), [0, 1])):
        with pytest.raises(DataError) as e:
            call()
        d = e.value.diagnostics[0]
        assert (d.span.line, d.span.col) == (line, col)
        assert "the network expects (N, " in d.message
        text = rendered(e.value)
        assert text.startswith(f"{model}:{line}:{col}: error: the input has shape (")
        assert "Traceback" not in text and "^" in text


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("fuse", PATHS)
@pytest.mark.parametrize("param,bad,layer,anchor", [
    ("W1", np.inf, "Affine(784, 50)", "Affine(784, 50)"),
    ("b1", np.nan, "Affine(784, 50)", "Affine(784, 50)"),
    ("W2", np.nan, "Affine(50, 10)", "Affine(10)"),
])
def test_not_finite_forward_names_the_layer(param, bad, layer, anchor, fuse):
    """Regression for predict, accuracy and probabilities: they returned NaN scores (and a made-up
    accuracy) without a word; now every forward pass raises RunError as loss and gradient do."""
    model = ROOT / "models" / "two_layer_net.net"
    net = load(model, fuse=fuse)
    x, t = batch(net)
    net.params[param].flat[0] = bad
    line, col = _where(model, anchor)
    for call in (lambda: net.loss(x, t), lambda: net.gradient(x, t), lambda: net.loss(x, t, train_flg=True),
                 lambda: net.predict(x), lambda: net.predict(x, train_flg=True), lambda: net.accuracy(x, t),
                 lambda: net.probabilities(x)):
        with pytest.raises(RunError) as e:
            call()
        d = e.value.diagnostics[0]
        assert layer in d.message and "NaN or infinity" in d.message
        assert (d.span.line, d.span.col) == (line, col)
        text = rendered(e.value)
        assert text.startswith(f"{model}:{line}:{col}: error: {layer} produced NaN or infinity in the forward pass")
        assert "Traceback" not in text
    assert e.value.exit_code == 1


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_not_finite_in_a_block_names_the_copy():
    model = ROOT / "models" / "multi_layer_net.net"
    net = load(model)
    x, t = batch(net)
    net.params["gamma2"][0] = np.inf  # the second Dense's BatchNorm
    with pytest.raises(RunError) as e:
        net.gradient(x, t)
    d = e.value.diagnostics[0]
    assert d.message.startswith("BatchNorm produced NaN or infinity")
    assert (d.span.line, d.span.col) == _where(model, "BatchNorm")
    assert any("copy 2 of 3" in n.message for n in d.notes)
    assert "Traceback" not in rendered(e.value)


def test_not_finite_input_is_named():
    net = load(ROOT / "models" / "two_layer_net.net")
    x, t = batch(net)
    x[1, 3] = np.nan
    with pytest.raises(RunError, match="receives an input that is not finite"):
        net.loss(x, t)


@pytest.mark.parametrize("fuse", PATHS)
def test_bad_labels(fuse):
    model = ROOT / "models" / "two_layer_net.net"
    net = load(model, fuse=fuse)
    x, _ = batch(net, n=3)
    loss_at = _where(model, "SoftmaxWithLoss")
    cases = {
        "a label is 10, but the network has 10 classes (0 to 9)": [0, 10, 1],
        "a label is -1, but the network has 10 classes": [0, -1, 1],
        "3 inputs but 2 labels": [0, 1],
        "class labels must be whole numbers": [0.5, 1, 2],
        "fit neither class indices (N,) nor one-hot (N, 10)": np.zeros((3, 9)),
    }
    for message, t in cases.items():
        for call in (net.loss, net.gradient, net.accuracy):
            with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")) as e:
                call(x, t)
            assert (e.value.diagnostics[0].span.line, e.value.diagnostics[0].span.col) == loss_at
            assert "Traceback" not in rendered(e.value)


def test_a_scalar_label_is_one_label():
    """Regression: a scalar label raised TypeError (len() of unsized object) instead of a DataError;
    with one sample it is that sample's label, as one image is a batch of one."""
    net = load(ROOT / "models" / "two_layer_net.net")
    x, t = batch(net, n=3)
    assert net.loss(x[0], 3) == net.loss(x[:1], [3])
    with pytest.raises(DataError, match="3 inputs but 1 labels"):
        net.loss(x, 3)


def test_one_hot_rows_must_be_one_hot():
    """Regression: a 2-D label array that is not one-hot (soft labels, an all-zero row) was turned
    into class indices by argmax without a word, giving a different loss than the book's."""
    net = load(ROOT / "models" / "two_layer_net.net")
    x, t = batch(net, n=3)
    soft = np.full((3, 10), 0.1)
    zero = np.eye(10)[t]
    zero[1] = 0
    for bad in (soft, zero, np.eye(10)[t] * 2):
        with pytest.raises(DataError, match="one-hot"):
            net.loss(x, bad)
    assert net.loss(x, np.eye(10, dtype=np.uint8)[t]) == net.loss(x, t)
    assert net.loss(x, np.eye(10, dtype=bool)[t]) == net.loss(x, t)


def test_one_flat_sample_fits_an_image_network():
    # regression: a single (784,) sample was refused by a 1x28x28 network that took (1, 28, 28)
    net = specc.compile("input 1x28x28\nConvolution(2, kernel=3) -> Affine(10) -> SoftmaxWithLoss", dtype="float64")
    x = np.random.default_rng(0).random(784)
    assert np.array_equal(net.predict(x), net.predict(x.reshape(1, 1, 28, 28)))


def test_nan_is_reported_without_numpy_warnings():
    import warnings
    net = specc.compile("input 4\nAffine(3) -> Affine(2) -> SoftmaxWithLoss")
    net.params["W1"][...] = np.inf
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(specc.RunError):
            net.loss(np.ones((2, 4)), [0, 1])


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("definition,where,hint", [
    ("layer S = sqrt(x) * 2", "sqrt(x)", "the square root of a negative number is NaN"),
    ("layer P = x ** 0.5 + 1", "x ** 0.5", "a fractional power of a negative number is NaN"),
    ("layer L = log(relu(x)) * 0.1", "log(relu(x))", "log of 0 is -infinity"),
    ("layer D = x / (x - x)", "x / (x - x)", "a division by 0 gives infinity"),
    ("layer E = exp(exp(exp(x * 9)))", "exp(exp(x * 9))", "exp overflows to infinity"),  # the middle one
])
def test_not_finite_in_an_expression_layer_points_at_the_operation(definition, where, hint):
    # the layer's input is finite (Affine's outputs of both signs, some 0 after relu): the expression
    # itself leaves the numbers, at the operation pointed at, whatever the learning rate
    text = f"{definition}\ninput 6\nAffine(8) -> {definition.split()[1]} -> Affine(2) -> SoftmaxWithLoss\n"
    for fuse in (True, False):
        net = specc.compile(text, name="e.net", fuse=fuse, seed=0)
        x = np.random.default_rng(0).standard_normal((16, 6)).astype(net.dtype)
        with pytest.raises(RunError) as e:
            net.loss(x, np.zeros(16, int))
        (d,) = e.value.diagnostics
        assert d.message == f"{definition.split()[1]} produced NaN or infinity in the forward pass"
        assert (d.span.line, d.span.col) == (3, text.splitlines()[2].index(definition.split()[1]) + 1)
        (note,) = d.notes
        start = definition.index(where)
        assert (note.span.line, note.span.col, note.span.end_col) == (1, start + 1, start + len(where) + 1)
        assert note.message == "the values leave the numbers here" and d.hint.startswith(hint)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_an_expression_layer_given_infinity_is_not_blamed_on_its_operations():
    text = "layer T = x * 2\ninput 3\nAffine(4) -> T -> Affine(2) -> SoftmaxWithLoss\n"
    net = specc.compile(text, name="e.net", seed=0)
    net.params["W1"][0, 0] = np.inf  # the Affine before it overflows: T gets infinity, passes it on
    with pytest.raises(RunError) as e:
        net.loss(np.ones((2, 3), net.dtype), np.zeros(2, int))
    (d,) = e.value.diagnostics
    assert d.message.startswith("Affine") and d.notes == ()
