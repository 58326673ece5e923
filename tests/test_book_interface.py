"""The book's interface, as a learner's code uses it: fresh gradients, a float64 gradient check,
parameters assigned from other arrays, the `layers` mapping with `dW`, weight decay in the loss,
empty batches, and networks that copy and pickle (issue 9, points 2-4, 6, 7, 9)."""
from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest

import specc
from specc.training import data

TWO_LAYER = "input 784\nAffine(50) -> ReLU -> Affine(10) -> SoftmaxWithLoss\n"


def mnist_batch(n: int = 3) -> tuple[np.ndarray, np.ndarray]:
    sample = data.load(None)  # the embedded real digits, as the book's load_mnist(normalize=True)
    return sample.x_train[:n].reshape(n, -1) / 255.0, sample.t_train[:n]


def test_gradient_returns_fresh_arrays():
    net = specc.compile(TWO_LAYER)
    x, t = mnist_batch(6)
    g1 = net.gradient(x[:3], t[:3])
    kept = {k: v.copy() for k, v in g1.items()}
    g2 = net.gradient(x[3:], t[3:])
    for k in g1:
        assert g1[k] is not g2[k]
        np.testing.assert_array_equal(g1[k], kept[k])  # the second call left the first result alone
    assert not np.array_equal(g1["W1"], g2["W1"])


def test_the_book_gradient_check_cell_on_a_float32_network():
    """ch05's gradient_check: mean |backprop - numerical| per parameter on 3 digits. The book prints
    4.6e-10 ... 1.4e-7 in float64; a float32 network must not look broken (1e-4 before the fix)."""
    net = specc.compile(TWO_LAYER)  # float32, the default
    x, t = mnist_batch(3)
    numerical = net.numerical_gradient(x, t)
    backprop = net.gradient(x, t)
    for key in ("W1", "b1", "W2", "b2"):
        assert numerical[key].dtype == np.float64
        assert np.mean(np.abs(backprop[key] - numerical[key])) < 1e-6, key


def test_params_take_float64_arrays_as_the_books_load_params_assigns_them():
    net = specc.compile(TWO_LAYER)
    rng = np.random.default_rng(0)
    x, t = mnist_batch(4)
    w = rng.standard_normal((784, 50)) * 0.01  # float64, as a pickled book network holds them
    live = net.params["W1"]
    net.params["W1"] = w
    assert net.params["W1"] is live and live.dtype == np.float32  # the same buffer, converted
    np.testing.assert_allclose(net.params["W1"], w, rtol=1e-6)
    # the generated code reads the new values: the same loss as a float64 twin holding them
    twin = specc.compile(TWO_LAYER, dtype="float64")
    for k in net.params:
        twin.params[k] = net.params[k]
    assert net.loss(x, t) == pytest.approx(twin.loss(x, t), rel=1e-5)
    net.params["b2"] -= 0.5  # the book's update, in place
    assert net.params["b2"][0] == pytest.approx(-0.5)


def test_a_parameter_of_the_wrong_shape_is_a_specc_error():
    net = specc.compile(TWO_LAYER)
    with pytest.raises(specc.DataError) as e:
        net.params["W1"] = np.zeros((50, 784))
    d = e.value.diagnostics[0]
    assert "'W1'" in d.message and "784x50" in d.message and "50x784" in d.message
    assert d.span is not None and d.span.line == 2
    with pytest.raises(specc.DataError, match="no parameter 'W3'"):
        net.params["W3"] = np.zeros(3)
    with pytest.raises(specc.DataError, match="numbers"):
        net.params["b1"] = np.array(["a"] * 50)


def test_layers_are_the_books_ordered_mapping_with_live_views():
    net = specc.compile("input 1x8x8\nConvolution(2, kernel=3) -> ReLU -> Pooling(2)"
                        " -> Affine(5) -> ReLU -> Affine(3) -> SoftmaxWithLoss\n", dtype="float64")
    assert list(net.layers) == ["Conv1", "Relu1", "Pool1", "Affine1", "Relu2", "Affine2"]
    assert net.lastLayer is net.last_layer
    x = np.random.default_rng(1).random((2, 1, 8, 8))
    grads = net.gradient(x, np.array([0, 2]))
    np.testing.assert_array_equal(net.layers["Affine1"].dW, grads["W2"])
    np.testing.assert_array_equal(net.layers["Conv1"].db, grads["b1"])
    assert net.layers["Affine2"].W is net.params["W3"]
    assert net.layers[3] is net.layers["Affine1"]  # by position too, as the book's DeepConvNet indexes
    net.layers["Affine2"].b = np.ones(3)  # as the book's load_params sets layer.W, layer.b
    np.testing.assert_array_equal(net.params["b3"], np.ones(3))
    with pytest.raises(AttributeError, match="has no attribute 'W'"):
        net.layers["Relu1"].W


def test_loss_includes_the_weight_decay_penalty_as_the_books_multilayernet():
    """loss = cross-entropy + lambda/2 * sum of W^2 over the weights (not the biases), and the
    gradient adds lambda * W: worked out here from the arrays themselves."""
    text = TWO_LAYER + "train { weight_decay = 0.1 }\n"
    net = specc.compile(text, dtype="float64")
    plain = specc.compile(TWO_LAYER, dtype="float64")
    for k in net.params:
        net.params[k] += 0.3  # biases non-zero too, so that decaying them would show
        plain.params[k] = net.params[k]
    x, t = mnist_batch(4)
    squares = sum(float((net.params[k] ** 2).sum()) for k in ("W1", "W2"))
    assert net.loss(x, t) == pytest.approx(plain.loss(x, t) + 0.5 * 0.1 * squares, rel=1e-12)
    g, g0 = net.gradient(x, t), plain.gradient(x, t)
    np.testing.assert_allclose(g["W1"], g0["W1"] + 0.1 * net.params["W1"], rtol=1e-12)
    np.testing.assert_array_equal(g["b1"], g0["b1"])
    numerical = net.numerical_gradient(x[:1], t[:1])
    np.testing.assert_allclose(numerical["b2"], net.gradient(x[:1], t[:1])["b2"], atol=1e-7)


@pytest.mark.parametrize("fuse", [True, False], ids=["fused", "unfused"])
def test_empty_batches_are_specc_errors(fuse):
    net = specc.compile(TWO_LAYER, fuse=fuse)
    x, t = np.zeros((0, 784)), np.zeros(0, int)
    for call in (net.loss, net.gradient, net.numerical_gradient):
        with pytest.raises(specc.DataError, match="the batch is empty"):
            call(x, t)
    assert net.predict(x).shape == (0, 10)
    assert net.accuracy(x, t) == 0.0


def test_networks_deepcopy_and_pickle():
    net = specc.compile("input 784\nAffine(20) -> BatchNorm -> ReLU -> Dropout(0.3) -> Affine(10) -> SoftmaxWithLoss")
    x, t = mnist_batch(5)
    net.gradient(x, t)  # workspaces exist and BatchNorm statistics have moved
    twin = copy.deepcopy(net)
    restored = pickle.loads(pickle.dumps(net))
    for other in (twin, restored):
        np.testing.assert_array_equal(other.predict(x), net.predict(x))
        assert other.params["W1"] is not net.params["W1"]
        other.params["W1"] += 1.0
        assert not np.array_equal(other.params["W1"], net.params["W1"])
        g1, g2 = other.gradient(x, t), other.gradient(x, t)  # its generated code runs on its own arrays
        assert set(g1) == set(net.params) and g1["W1"] is not g2["W1"]
