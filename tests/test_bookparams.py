"""The book's parameter files: save_params/load_params over specc's .npz, the restricted import of
the book's pickles (malicious, foreign and mismatched files refused), and the Dropout fold checked
against a book-style forward pass written here, independently of specc."""
from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
from helpers import ROOT
from numpy.lib.stride_tricks import sliding_window_view

import specc
from specc.errors import DataError

TWO_LAYER = "Affine(784,50) -> ReLU -> Affine(50,10) -> SoftmaxWithLoss"

# The book's ch08/deep_convnet.py: (name, shape) of every parameter, in its order.
BOOK_DEEP = [("W1", (16, 1, 3, 3)), ("b1", (16,)), ("W2", (16, 16, 3, 3)), ("b2", (16,)),
             ("W3", (32, 16, 3, 3)), ("b3", (32,)), ("W4", (32, 32, 3, 3)), ("b4", (32,)),
             ("W5", (64, 32, 3, 3)), ("b5", (64,)), ("W6", (64, 64, 3, 3)), ("b6", (64,)),
             ("W7", (1024, 50)), ("b7", (50,)), ("W8", (50, 10)), ("b8", (10,))]


def book_file(tmp_path: Path, params: dict, name: str = "params.pkl") -> Path:
    """What the book's save_params writes: pickle.dump of a dict of float64 arrays."""
    path = tmp_path / name
    path.write_bytes(pickle.dumps(params))
    return path


def random_params(shapes, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {k: rng.normal(0, 0.5, s) for k, s in shapes}


# --- save_params / load_params ---------------------------------------------------------------

def test_save_params_writes_npz_not_pickle_under_the_books_name(tmp_path):
    net = specc.compile(TWO_LAYER, seed=1)
    path = tmp_path / "params.pkl"
    net.save_params(str(path))  # as ch07/train_convnet.py calls it
    assert path.exists() and not (tmp_path / "params.pkl.npz").exists()
    assert zipfile.is_zipfile(path)
    with pytest.raises(pickle.UnpicklingError):
        pickle.loads(path.read_bytes())
    other = specc.compile(TWO_LAYER, seed=2)
    assert not np.array_equal(other.params["W1"], net.params["W1"])
    other.load_params(str(path))  # and as visualize_filter.py reads it back
    for k in net.params:
        np.testing.assert_array_equal(other.params[k], net.params[k])


def test_save_and_load_keep_batchnorm_statistics(tmp_path):
    text = "input 6\nAffine(4) -> BatchNorm -> ReLU -> Affine(3) -> SoftmaxWithLoss"
    net = specc.compile(text, dtype="float64")
    net.state["running_mean1"][:] = [1.0, 2.0, 3.0, 4.0]
    net.save_params(tmp_path / "p.npz")
    other = specc.compile(text, dtype="float64")
    other.load_params(tmp_path / "p.npz")
    np.testing.assert_array_equal(other.state["running_mean1"], [1.0, 2.0, 3.0, 4.0])


def test_load_params_imports_a_books_pickle_into_float32(tmp_path):
    params = random_params([("W1", (784, 50)), ("b1", (50,)), ("W2", (50, 10)), ("b2", (10,))])
    net = specc.compile(TWO_LAYER)  # float32; the book's arrays are float64
    net.load_params(book_file(tmp_path, params))
    for k, v in params.items():
        assert net.params[k].dtype == np.float32
        np.testing.assert_allclose(net.params[k], v, rtol=1e-6)
    x = np.random.default_rng(1).random((3, 784))
    expected = np.maximum(x @ params["W1"] + params["b1"], 0) @ params["W2"] + params["b2"]
    np.testing.assert_allclose(net.predict(x), expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_every_pickle_protocol_of_a_dict_of_arrays_imports(tmp_path, protocol):
    params = random_params([("W1", (784, 50)), ("b1", (50,)), ("W2", (50, 10)), ("b2", (10,))])
    path = tmp_path / "p.pkl"
    path.write_bytes(pickle.dumps(params, protocol=protocol))
    net = specc.compile(TWO_LAYER, dtype="float64")
    net.load_params(path)
    for k, v in params.items():
        np.testing.assert_array_equal(net.params[k], v)


# --- what the import refuses -------------------------------------------------------------------

class _Evil:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _CodecEvil:
    """The one non-NumPy global admitted, _codecs.encode, with a codec other than latin-1."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        import codecs
        return (codecs.encode, (b"x", "zlib"))


class _EvalEvil:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (eval, (f"open({str(self.marker)!r}, 'w').close()",))


@pytest.mark.parametrize("evil", [_Evil, _EvalEvil, _CodecEvil], ids=["os.system", "builtins.eval", "codecs"])
@pytest.mark.parametrize("nested", [False, True], ids=["top", "inside-the-dict"])
def test_a_malicious_pickle_is_refused_without_running_anything(tmp_path, evil, nested):
    marker = tmp_path / "pwned"
    payload = {"W1": np.zeros((784, 50)), "b1": evil(marker)} if nested else evil(marker)
    path = book_file(tmp_path, payload)
    net = specc.compile(TWO_LAYER)
    before = {k: v.copy() for k, v in net.params.items()}
    with pytest.raises(DataError) as e:
        net.load_params(path)
    assert not marker.exists()
    message = str(e.value.diagnostics[0].message)
    assert "refused to unpickle" in message and any(w in message for w in ("system", "eval", "zlib"))
    assert all(np.array_equal(before[k], net.params[k]) for k in before)  # nothing half-loaded


@pytest.mark.parametrize("payload, words", [
    ([np.zeros(3)], "holds a list"),
    ({1: np.zeros(3)}, "parameter names are strings"),
    ({"W1": 3.0}, "'W1' holds a float"),
    ({"W1": np.array([1, "x"], dtype=object)}, "object array"),
    ({"W1": np.zeros((784, 50), dtype=np.int64)}, "int64 array"),
])
def test_pickles_that_are_not_a_dict_of_float_arrays_are_refused(tmp_path, payload, words):
    with pytest.raises(DataError) as e:
        specc.import_book_params(specc.compile(TWO_LAYER), book_file(tmp_path, payload))
    assert words in e.value.diagnostics[0].message


@pytest.mark.parametrize("content", [b"", b"\x80\x04garbage", pickle.dumps({"W1": np.zeros(3)})[:-5], b"hello"])
def test_truncated_or_foreign_files_are_data_errors(tmp_path, content):
    path = tmp_path / "x.pkl"
    path.write_bytes(content)
    with pytest.raises(DataError):
        specc.compile(TWO_LAYER).load_params(path)


def test_a_missing_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError):
        specc.compile(TWO_LAYER).load_params(tmp_path / "nowhere.pkl")


def test_names_and_shapes_are_checked_per_parameter_at_their_line(tmp_path):
    text = "input 784\nAffine(50) -> ReLU\n  -> Affine(10) -> SoftmaxWithLoss"
    params = {"W1": np.zeros((784, 50)), "b1": np.zeros(50), "W2": np.zeros((10, 50)), "W9": np.zeros(2)}
    with pytest.raises(DataError) as e:
        specc.import_book_params(specc.compile(text), book_file(tmp_path, params))
    found = {d.message: d.span.line if d.span else None for d in e.value.diagnostics}
    assert found == {
        "'W2' is 10x50 in params.pkl, but Affine(50, 10) needs 50x10": 3,
        "params.pkl has no 'b2' (10) for Affine(50, 10)": 3,
        "params.pkl has 'W9' (2), which this network does not declare": None,
    }


# --- the Dropout fold, against a book-style forward written here ------------------------------

def book_forward(layers, p, x):
    """The book's test-time forward (train_flg=False), written from its formulas, not from specc:
    Dropout multiplies by 1 - ratio; BatchNorm uses running mean 0 and variance 1 (fresh ones)."""
    n = m = 0  # the book numbers W, b and gamma, beta apart: W1 b1 gamma1 beta1 W2 b2 ...
    for kind, arg in layers:
        n += kind in ("conv", "affine")
        m += kind == "bn"
        if kind == "conv":  # cross-correlation, pad `arg`, stride 1
            w, b = p[f"W{n}"], p[f"b{n}"]
            xp = np.pad(x, ((0, 0), (0, 0), (arg, arg), (arg, arg)))
            win = sliding_window_view(xp, w.shape[2:], axis=(2, 3))  # (N, C, OH, OW, k, k)
            x = np.einsum("nchwij,fcij->nfhw", win, w) + b[:, None, None]
        elif kind == "pool":  # 2x2, stride 2
            n_, c, h, w_ = x.shape
            x = x.reshape(n_, c, h // 2, 2, w_ // 2, 2).max(axis=(3, 5))
        elif kind == "affine":
            x = x.reshape(len(x), -1) @ p[f"W{n}"] + p[f"b{n}"]
        elif kind == "bn":
            x = p[f"gamma{m}"] * x / np.sqrt(1 + 1e-6) + p[f"beta{m}"]
        elif kind == "relu":
            x = np.where(x > 0, x, 0.0)
        elif kind == "sigmoid":
            x = 1 / (1 + np.exp(-x))
        elif kind == "dropout":
            x = x * (1.0 - arg)
    return x


SMALL_CONV = ("input 2x8x8\n"
              "Convolution(3, kernel=3, pad=1) -> ReLU -> Pooling(2, stride=2)\n"
              "  -> Convolution(4, kernel=3, pad=2) -> ReLU -> Pooling(2, stride=2)\n"
              "  -> Affine(6) -> ReLU -> Dropout(0.3)\n"
              "  -> Affine(5) -> Dropout(0.4) -> Dropout(0.25)\n"
              "  -> SoftmaxWithLoss")
SMALL_CONV_LAYERS = [("conv", 1), ("relu", None), ("pool", None), ("conv", 2), ("relu", None), ("pool", None),
                     ("affine", None), ("relu", None), ("dropout", 0.3),
                     ("affine", None), ("dropout", 0.4), ("dropout", 0.25)]
SMALL_CONV_SHAPES = [("W1", (3, 2, 3, 3)), ("b1", (3,)), ("W2", (4, 3, 3, 3)), ("b2", (4,)),
                     ("W3", (4 * 3 * 3, 6)), ("b3", (6,)), ("W4", (6, 5)), ("b4", (5,))]

SMALL_BN = ("input 7\n"
            "Affine(6) -> BatchNorm -> ReLU -> Dropout(0.5)\n"
            "  -> Affine(4) -> SoftmaxWithLoss")
SMALL_BN_LAYERS = [("affine", None), ("bn", None), ("relu", None), ("dropout", 0.5), ("affine", None)]
SMALL_BN_SHAPES = [("W1", (7, 6)), ("b1", (6,)), ("gamma1", (6,)), ("beta1", (6,)), ("W2", (6, 4)), ("b2", (4,))]


@pytest.mark.parametrize("fuse", [True, False], ids=["fused", "unfused"])
@pytest.mark.parametrize("text, layers, shapes", [
    (SMALL_CONV, SMALL_CONV_LAYERS, SMALL_CONV_SHAPES),
    (SMALL_BN, SMALL_BN_LAYERS, SMALL_BN_SHAPES),
], ids=["conv-pool-affine", "batchnorm"])
def test_imported_book_params_give_the_books_scores(tmp_path, text, layers, shapes, fuse):
    params = random_params(shapes, seed=3)
    x = np.random.default_rng(4).random((5, *specc.compile(text).input_shape))
    expected = book_forward(layers, params, x)
    net = specc.compile(text, dtype="float64", fuse=fuse)
    loaded = specc.import_book_params(net, book_file(tmp_path, params))
    np.testing.assert_allclose(net.predict(x), expected, rtol=0, atol=1e-12 * np.abs(expected).max())
    unfolded = specc.compile(text, dtype="float64", fuse=fuse)
    specc.import_book_params(unfolded, book_file(tmp_path, params), fold_dropout=False)
    assert np.abs(unfolded.predict(x) - expected).max() > 0.1 * np.abs(expected).max()  # what the fold fixes
    assert set(loaded) == set(params)


@pytest.mark.parametrize("fuse", [True, False], ids=["fused", "unfused"])
def test_the_books_dropout_takes_the_books_values_unfolded(tmp_path, fuse):
    """Dropout(scale="test") applies the book's 1 - ratio itself: nothing is folded into the weights."""
    text = SMALL_BN.replace("Dropout(0.5)", 'Dropout(0.5, scale="test")')
    params = random_params(SMALL_BN_SHAPES, seed=3)
    x = np.random.default_rng(4).random((5, 7))
    net = specc.compile(text, dtype="float64", fuse=fuse)
    specc.import_book_params(net, book_file(tmp_path, params))
    np.testing.assert_array_equal(net.params["W1"], params["W1"])
    expected = book_forward(SMALL_BN_LAYERS, params, x)
    np.testing.assert_allclose(net.predict(x), expected, rtol=0, atol=1e-12 * np.abs(expected).max())


def test_the_fold_is_exact_in_training_too(tmp_path):
    """With the same masks, specc's x*mask/(1-r) of the folded values is the book's x*mask."""
    params = random_params(SMALL_BN_SHAPES[:2] + SMALL_BN_SHAPES[4:], seed=5)
    text = "input 7\nAffine(6) -> ReLU -> Dropout(0.4) -> Affine(4) -> SoftmaxWithLoss"
    net = specc.compile(text, dtype="float64", fuse=False)
    specc.import_book_params(net, book_file(tmp_path, params))
    x = np.random.default_rng(6).random((5, 7))
    state = net.rng.bit_generator.state
    scores = net.predict(x, train_flg=True)
    net.rng.bit_generator.state = state
    keep = net.rng.random((5, 6)) >= 0.4  # the draw specc's Dropout makes
    expected = (np.maximum(x @ params["W1"] + params["b1"], 0) * keep) @ params["W2"] + params["b2"]
    np.testing.assert_allclose(scores, expected, rtol=0, atol=1e-12 * np.abs(expected).max())


@pytest.mark.parametrize("text, line, words", [
    ("input 7\nAffine(6) -> Sigmoid\n  -> Dropout(0.5) -> Affine(4) -> SoftmaxWithLoss", 3, "Sigmoid lies before it"),
    ("input 7\nDropout(0.2)\n  -> Affine(4) -> SoftmaxWithLoss", 2, "it is the first layer"),
])
def test_a_dropout_that_cannot_be_folded_is_refused_at_its_line(tmp_path, text, line, words):
    shapes = [("W1", (7, 6)), ("b1", (6,)), ("W2", (6, 4)), ("b2", (4,))] if "Sigmoid" in text else \
        [("W1", (7, 4)), ("b1", (4,))]
    params = random_params(shapes)
    net = specc.compile(text, dtype="float64")
    before = {k: v.copy() for k, v in net.params.items()}
    with pytest.raises(DataError) as e:
        specc.import_book_params(net, book_file(tmp_path, params))
    d = e.value.diagnostics[0]
    assert d.code == "dropout-fold" and d.span.line == line and words in d.message
    assert "fold_dropout=False" in d.hint
    assert all(np.array_equal(before[k], net.params[k]) for k in before)
    specc.import_book_params(net, book_file(tmp_path, params), fold_dropout=False)  # the way out
    np.testing.assert_array_equal(net.params["W1"], params["W1"])


# --- DeepConvNet -------------------------------------------------------------------------------

def test_deep_conv_net_has_the_books_parameters_and_scores(tmp_path):
    net = specc.load(ROOT / "models" / "deep_conv_net.net", dtype="float64")
    assert [(k, v.shape) for k, v in net.params.items()] == BOOK_DEEP
    params = random_params(BOOK_DEEP, seed=7)
    for k, v in params.items():
        v *= np.sqrt(2.0 / (np.prod(v.shape[1:]) if v.ndim == 4 else v.shape[0]))  # He, as the book draws
    net.load_params(book_file(tmp_path, params, "deep_convnet_params.pkl"))
    for k, v in params.items():  # the two Dropout(0.5) fold into the Affine layers before them
        np.testing.assert_array_equal(net.params[k], v * (0.5 if k in ("W7", "b7", "W8", "b8") else 1.0))
    x = np.random.default_rng(8).random((3, 1, 28, 28))
    layers = ([("conv", 1), ("relu", None), ("conv", 1), ("relu", None), ("pool", None),
               ("conv", 1), ("relu", None), ("conv", 2), ("relu", None), ("pool", None),
               ("conv", 1), ("relu", None), ("conv", 1), ("relu", None), ("pool", None),
               ("affine", None), ("relu", None), ("dropout", 0.5), ("affine", None), ("dropout", 0.5)])
    expected = book_forward(layers, params, x)
    np.testing.assert_allclose(net.predict(x), expected, rtol=0, atol=1e-12 * np.abs(expected).max())
