"""`specc inspect` (activation histograms, first-layer filters, misclassified samples) and float16
inference (`specc eval --dtype float16`), on the embedded sample and tiny networks; each checked
against numbers worked out here with plain NumPy."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
from helpers import ROOT, run_cli

import specc
from specc import api
from specc.errors import RunError, UsageError
from specc.inspection import Activations, Filters
from specc.layers.losses import softmax_cross_entropy
from specc.training import data, plot
from specc.training.evaluate import evaluate

MODELS = ROOT / "models"
SIGMOID = MODELS / "mlp_5x100_sigmoid.net"
RELU = MODELS / "mlp_5x100_relu.net"
TWO_LAYER = MODELS / "two_layer_net.net"
TINY_CONV = """\
input 1x28x28
Convolution(6, kernel=5) -> ReLU -> Pooling(2, stride=2)
  -> Affine(10) -> SoftmaxWithLoss
train {
  optimizer = Adam(lr=0.001)
  seed = 0
}
"""


@pytest.fixture(scope="module")
def conv(tmp_path_factory):
    """A tiny convolutional network trained for one epoch on the embedded sample: (spec, weights)."""
    folder = tmp_path_factory.mktemp("inspect")
    spec = folder / "tiny_conv.net"
    spec.write_text(TINY_CONV)
    r = run_cli("train", spec, "--epochs", 2, "--out", folder / "run")
    assert r.code == 0, r.err
    return spec, folder / "run" / "weights.npz"


@pytest.fixture(scope="module")
def two_layer(tmp_path_factory):
    folder = tmp_path_factory.mktemp("inspect2")
    r = run_cli("train", TWO_LAYER, "--epochs", 2, "--out", folder / "run")
    assert r.code == 0, r.err
    return folder / "run" / "weights.npz"


# --- activations ---------------------------------------------------------------------------------

def test_sigmoid_std_1_saturates_and_std_001_all_alike(tmp_path):
    # the book's figures 6-10 and 6-11: with std 1 the values pile up at 0 and 1; with 0.01 all sit near 0.5
    report = api.activation_histograms(SIGMOID, init="std=1,0.01", out=tmp_path / "a.png")
    (one, wide), (small, narrow) = report.rows
    assert (one, small) == ("init std=1", "init std=0.01") and len(wide) == len(narrow) == 5
    assert all(a.name == "Sigmoid" and a.bounds == (0.0, 1.0) and a.values.shape == (1000, 100) for a in wide)
    assert all(a.saturated > 0.4 and a.std > 0.4 for a in wide)
    assert all(a.saturated == 0 and a.std < 0.03 and abs(a.mean - 0.5) < 0.01 for a in narrow)
    assert report.inputs == "1,000 standard-normal inputs (seed 0)"
    assert (report.png is not None and report.png.is_file()) or not plot.available()


def test_he_keeps_relu_activations_spread_where_xavier_and_001_shrink(tmp_path):
    report = api.activation_histograms(RELU, init="0.01,xavier,he", random=500, out=tmp_path / "a.png")
    stds = {caption: [a.std for a in layers] for caption, layers in report.rows}
    assert stds["init he"][-1] / stds["init he"][0] > 0.7
    assert stds["init xavier"][-1] / stds["init xavier"][0] < 0.5
    assert stds["init std=0.01"][-1] < 1e-3
    last = report.rows[0][1][-1]
    assert last.near_zero == 1.0 and 0.3 < last.saturated < 0.7  # every value vanishes; about half exactly 0


def test_the_values_are_the_layers_outputs_computed_in_plain_numpy(tmp_path):
    # the spec's own init (std 1), seed 3, on samples of the embedded data: layer 1 and 2 by hand
    report = api.activation_histograms(SIGMOID.parent / "two_layer_net.net", data="mnist-5k", count=50, seed=3,
                                       out=tmp_path / "a.png")
    net = specc.load(TWO_LAYER, dtype="float64", seed=3)
    sample = data.load(None)
    x = sample.x_test[:50].reshape(50, -1) / 255
    relu = np.maximum(x @ net.params["W1"] + net.params["b1"], 0)
    (caption, layers), = report.rows
    assert caption == "the spec's init" and [a.index for a in layers] == [2]
    np.testing.assert_allclose(layers[0].values, relu, rtol=1e-12, atol=1e-12)
    assert layers[0].saturated == pytest.approx((relu == 0).mean())
    assert report.inputs == "the first 50 test samples of mnist-5k"


def test_activations_of_trained_weights(two_layer, tmp_path):
    report = api.activation_histograms(TWO_LAYER, weights=two_layer, random=20, out=tmp_path / "a.png")
    net = api.trained(TWO_LAYER, two_layer, "float64")
    x = np.random.default_rng([0, 2]).standard_normal((20, 784))
    np.testing.assert_allclose(report.rows[0][1][0].values, np.maximum(x @ net.params["W1"] + net.params["b1"], 0),
                               rtol=1e-10, atol=1e-10)
    assert report.rows[0][0] == "weights of weights.npz"


def test_saturation_follows_the_declared_range():
    values = np.array([[0.0, 0.005, 0.5, 0.995, 1.0]])
    assert Activations(1, "Sigmoid", 1, values, (0.0, 1.0)).saturated == pytest.approx(0.8)
    assert Activations(1, "ReLU", 1, values, (0.0, None)).saturated == pytest.approx(0.2)
    assert Activations(1, "X", 1, values, (None, None)).saturated is None


def test_activation_misuse_is_refused_with_a_hint(tmp_path):
    with pytest.raises(UsageError, match="give one"):
        api.activation_histograms(TWO_LAYER, init="he", weights=tmp_path / "w.npz")
    with pytest.raises(UsageError, match="give one"):
        api.activation_histograms(TWO_LAYER, random=10, data="mnist-5k")
    spec = tmp_path / "linear.net"
    spec.write_text("input 4\nAffine(3) -> SoftmaxWithLoss\n")
    with pytest.raises(UsageError, match="no activation layer"):
        api.activation_histograms(spec)


# --- filters -------------------------------------------------------------------------------------

def test_filters_before_and_after_are_the_seeded_and_the_trained_weights(conv, tmp_path):
    spec, weights = conv
    report = api.filter_images(spec, weights=weights, out=tmp_path / "f.png")
    (before_caption, before), (after_caption, after) = report.panels
    assert before_caption == "before training (seed 0)" and after_caption == "after training (weights.npz)"
    np.testing.assert_array_equal(before.weights, specc.load(spec, dtype="float64").params["W1"])
    np.testing.assert_allclose(after.weights, np.load(weights)["param/W1"], rtol=1e-7)
    assert before.weights.shape == (6, 1, 5, 5) and before.index == 1 and before.line == 2
    assert (report.png is not None and report.png.is_file()) or not plot.available()
    alone = api.filter_images(spec, out=tmp_path / "g.png")
    assert len(alone.panels) == 1


def test_smoothness_tells_structure_from_noise():
    ramp = np.add.outer(np.arange(5.0), np.arange(5.0))[None, None].repeat(4, axis=0)  # smooth gradients
    noise = np.random.default_rng(0).standard_normal((30, 1, 5, 5))
    assert Filters(1, "c", 1, ramp).smoothness > 0.8
    assert abs(Filters(1, "c", 1, noise).smoothness) < 0.1


def test_filters_of_a_network_without_convolution_are_refused():
    with pytest.raises(UsageError, match="no Convolution layer") as e:
        api.filter_images(TWO_LAYER)
    assert "simple_conv_net.net" in (e.value.diagnostics[0].hint or "")


# --- misclassified -------------------------------------------------------------------------------

def test_misclassified_are_the_first_wrong_test_samples(conv, tmp_path):
    spec, weights = conv
    report = api.misclassified_images(spec, weights, count=12, out=tmp_path / "m.png")
    net = api.trained(spec, weights)
    sample = data.load(None)
    guesses = net.predict(sample.x_test / 255).argmax(axis=1)
    wrong = np.flatnonzero(guesses != sample.t_test)
    m = report.found
    np.testing.assert_array_equal(m.indices, wrong[:12])
    np.testing.assert_array_equal(m.labels, sample.t_test[wrong[:12]])
    np.testing.assert_array_equal(m.guesses, guesses[wrong[:12]])
    np.testing.assert_allclose(m.images, sample.x_test[wrong[:12]].reshape(12, 28, 28) / 255)
    assert (m.wrong, m.total) == (len(wrong), 1000)
    assert (report.png is not None and report.png.is_file()) or not plot.available()


# --- float16 -------------------------------------------------------------------------------------

def test_float16_accuracy_is_within_001_of_float32(two_layer):
    dataset, rows = api.precisions(TWO_LAYER, two_layer)
    acc = {r.dtype: r.evaluation.accuracy for r in rows}
    assert list(acc) == ["float16", "float32", "float64"] and dataset.name == "mnist-5k"
    assert abs(acc["float16"] - acc["float32"]) <= 0.01 and acc["float32"] > 0.8
    assert all(np.isfinite(r.evaluation.loss) for r in rows)


def test_the_float16_network_runs_in_float16(two_layer):
    net = api.trained(TWO_LAYER, two_layer, "float16")
    assert {v.dtype for v in net.params.values()} == {np.dtype(np.float16)}
    x = (data.load(None).x_test[:8].reshape(8, -1) / 255).astype(np.float16)
    scores = net.forward(x)
    assert scores.dtype == np.float16
    buffers = net.workspace(8, False).values()  # every float buffer float16; the rest label positions
    assert {b.dtype for b in buffers if b.dtype.kind != "i"} == {np.dtype(np.float16)}
    # the same numbers as the float32 network, to float16's precision (about 3 decimal digits)
    exact = api.trained(TWO_LAYER, two_layer, "float32").forward(x.astype(np.float32))
    np.testing.assert_allclose(scores.astype(np.float32), exact, rtol=0.02, atol=0.02)


def test_softmax_in_float16_stays_finite_and_overflow_is_named():
    scores = np.array([[60000.0, -60000.0, 0.0], [1.0, 2.0, 3.0]], np.float16)
    loss = softmax_cross_entropy(scores, np.array([1, 2]), np.empty((3, 2), np.float16))
    assert np.isfinite(loss) and loss > 1e4  # log-sum-exp: no exp overflow, no log(0)
    net = specc.compile("input 4\nAffine(3) -> SoftmaxWithLoss\n", dtype="float16")
    net.params["W1"][...] = 30000  # four inputs of 1 give 120000 > 65504, float16's largest
    batches = data.Batches(np.ones((5, 4), np.float32), 1.0, net.dtype, (4,))
    with pytest.raises(RunError) as e:
        evaluate(net, batches, np.zeros(5, np.intp), finite=True)
    d = e.value.diagnostics[0]
    assert "NaN or infinity" in d.message and d.span.line == 2 and "65504" in (d.hint or "")


def test_eval_dtype_float16_prints_every_dtype_side_by_side(two_layer):
    r = run_cli("eval", TWO_LAYER, "--weights", two_layer, "--dtype", "float16")
    assert r.code == 0, r.err
    assert ", float16" in r.out.splitlines()[0] and "predictions unlike float64" in r.out
    assert all(f"│ {t} " in r.out for t in ("float16", "float32", "float64"))
    r = run_cli("eval", TWO_LAYER, "--weights", two_layer, "--dtype", "float64")
    assert r.code == 0 and ", float64" in r.out and "predictions unlike" not in r.out


def test_training_in_float16_is_refused(tmp_path):
    with pytest.raises(UsageError, match="float32 or float64, not float16"):
        api.training(TWO_LAYER, out=tmp_path / "r", dtype="float16")


def test_a_book_pickle_is_accepted_as_weights(two_layer, tmp_path):
    # the book's save_params writes a pickled dict of arrays; --weights reads it through the safe import
    arrays = dict(np.load(two_layer))
    book = {k[len("param/"):]: v.astype(np.float64) for k, v in arrays.items() if k.startswith("param/")}
    with open(tmp_path / "params.pkl", "wb") as f:
        pickle.dump(book, f)
    ours = api.evaluation(TWO_LAYER, two_layer)[2].accuracy
    assert api.evaluation(TWO_LAYER, tmp_path / "params.pkl")[2].accuracy == ours


# --- the command ---------------------------------------------------------------------------------

def test_inspect_prints_a_table_per_init_and_writes_the_png(tmp_path):
    out = tmp_path / "h.png"
    r = run_cli("inspect", "activations", SIGMOID, "--init", "std=1,xavier", "--random", 200, "--out", out)
    assert r.code == 0, r.err
    assert "init std=1" in r.out and "init xavier" in r.out and "saturated" in r.out
    assert f"wrote {out}" in r.out.replace("\n", "") or "matplotlib is missing" in r.out


def test_inspect_refuses_flags_of_another_view():
    r = run_cli("inspect", "filters", TWO_LAYER, "--random", 10)
    assert r.code == 2 and "--random is not for the filters view" in r.err
    r = run_cli("inspect", "misclassified", TWO_LAYER)
    assert r.code == 2 and "needs trained weights" in r.err


def test_without_matplotlib_the_table_is_printed_and_the_picture_is_explained(monkeypatch, tmp_path):
    from specc.training import figures

    monkeypatch.setattr(figures, "available", lambda: False)
    r = run_cli("inspect", "activations", SIGMOID, "--random", 50, "--out", tmp_path / "h.png")
    assert r.code == 0 and "1-layer" not in r.out and "Sigmoid" in r.out
    assert "no picture: matplotlib is missing (pip install matplotlib)" in r.out and not (tmp_path / "h.png").exists()
