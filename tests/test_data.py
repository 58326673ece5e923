"""Data sets (specc.data): the embedded sample, the IDX and .npz loaders and every way a file can be
bad, batches kept as uint8, named-set lookup and download (from a local HTTP server only)."""
from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import socket
import struct
import threading
from pathlib import Path

import numpy as np
import pytest

from specc import api
from specc.errors import DataError
from specc.training import data, idx, imagefiles

IDX_CODES = {np.dtype(np.uint8): 0x08, np.dtype(np.int8): 0x09, np.dtype(">i2"): 0x0B, np.dtype(">i4"): 0x0C,
             np.dtype(">f4"): 0x0D, np.dtype(">f8"): 0x0E}
FILES = {("train", "images"): "train-images-idx3-ubyte", ("train", "labels"): "train-labels-idx1-ubyte",
         ("test", "images"): "t10k-images-idx3-ubyte", ("test", "labels"): "t10k-labels-idx1-ubyte"}


def idx_bytes(a: np.ndarray, dims: tuple[int, ...] | None = None) -> bytes:
    """An IDX file: 0x0000, the type byte, the number of dimensions, the big-endian sizes, the data."""
    a = np.asarray(a)
    dtype = a.dtype.newbyteorder(">") if a.dtype.itemsize > 1 else a.dtype
    dims = a.shape if dims is None else dims
    return (struct.pack(">HBB", 0, IDX_CODES[dtype], len(dims)) + struct.pack(f">{len(dims)}I", *dims)
            + a.astype(dtype).tobytes())


def write_idx(path: Path, a: np.ndarray, gz: bool | None = None, dims=None) -> Path:
    raw = idx_bytes(a, dims)
    gz = path.suffix == ".gz" if gz is None else gz
    path.write_bytes(gzip.compress(raw, mtime=0) if gz else raw)
    return path


def small_arrays(n_train=60, n_test=20, shape=(28, 28), seed=0, classes=10):
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, (n_train, *shape), dtype=np.uint8), rng.integers(0, classes, n_train).astype(np.uint8),
            rng.integers(0, 256, (n_test, *shape), dtype=np.uint8), rng.integers(0, classes, n_test).astype(np.uint8))


def write_set(folder: Path, gz: bool = True, **kwargs) -> tuple[np.ndarray, ...]:
    """The four MNIST-format files of a small random data set; returns the arrays written."""
    folder.mkdir(parents=True, exist_ok=True)
    arrays = small_arrays(**kwargs)
    for (key, stem), a in zip(FILES.items(), arrays):
        write_idx(folder / (stem + (".gz" if gz else "")), a, gz)
    return arrays


def refused(call, *fragments: str, name: str | Path | None = None) -> DataError:
    """The call raises DataError naming `name` whose messages contain every fragment."""
    with pytest.raises(DataError) as info:
        call()
    e = info.value
    text = " ".join(d.message + " " + (d.hint or "") for d in e.diagnostics)
    for f in fragments:
        assert f in text, (f, text)
    if name is not None:
        assert e.name == str(name)
    assert e.exit_code == 2
    return e


# --- the embedded sample -------------------------------------------------------------------------

def test_sample_is_mnist_5k():
    d = data.load(None)
    assert d.name == "mnist-5k"
    assert d.x_train.shape == (4000, 28, 28) and d.x_test.shape == (1000, 28, 28)
    assert d.x_train.dtype == np.uint8 and d.x_test.dtype == np.uint8  # kept as stored
    assert d.sample_shape == (28, 28) and d.classes == 10 and d.scale() == 1 / 255
    # the first labels and the counts per digit, as the sample's README documents them
    assert d.t_train[:10].tolist() == [6, 0, 5, 4, 9, 9, 8, 3, 1, 2]
    assert d.t_test[:10].tolist() == [6, 3, 0, 8, 8, 3, 0, 0, 7, 8]
    assert np.bincount(d.t_train).tolist() == [400] * 10
    assert np.bincount(d.t_test).tolist() == [100] * 10
    assert data.load("mnist-5k").t_test.tolist() == d.t_test.tolist()


def test_sample_files_match_their_checksums():
    for line in (data.SAMPLE_DIR / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split()
        assert hashlib.sha256((data.SAMPLE_DIR / name.lstrip("*")).read_bytes()).hexdigest() == digest, name


# --- IDX ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("gz", [True, False])
def test_idx_folder_gzip_and_raw(tmp_path, gz):
    arrays = write_set(tmp_path / "set", gz=gz)
    d = data.load(tmp_path / "set")
    for got, want in zip((d.x_train, d.t_train, d.x_test, d.t_test), arrays):
        np.testing.assert_array_equal(got, want)
    assert d.x_train.dtype == np.uint8 and d.t_train.dtype == np.intp
    assert d.name == "set" and d.origin == str(tmp_path / "set")


def test_idx_alternative_file_names(tmp_path):
    """The names of some mirrors: train-images.idx3-ubyte with a dot."""
    arrays = small_arrays()
    for (split, kind), a in zip(FILES, arrays):
        stem = data._STEMS[(split, kind)][1]
        write_idx(tmp_path / stem, a, gz=False)
    assert data.load_folder(tmp_path).x_test.shape == (20, 28, 28)


@pytest.mark.parametrize("dtype", [np.int8, ">i2", ">i4", ">f4", ">f8"])
def test_idx_value_types(tmp_path, dtype):
    a = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
    got = idx.read_idx(write_idx(tmp_path / "a.idx", a))
    np.testing.assert_array_equal(got, a)
    assert got.dtype.isnative


def test_idx_truncated_header(tmp_path):
    path = tmp_path / "x-idx3-ubyte"
    path.write_bytes(b"\x00\x00")
    refused(lambda: idx.read_idx(path), "truncated", "header", name=path)
    path.write_bytes(idx_bytes(np.zeros((2, 3, 3), np.uint8))[:10])  # ends inside the dimensions
    refused(lambda: idx.read_idx(path), "truncated", "dimensions", name=path)
    path.write_bytes(b"")
    refused(lambda: idx.read_idx(path), "truncated", name=path)


@pytest.mark.parametrize("gz", [True, False])
def test_idx_header_announces_more_than_the_file_holds(tmp_path, gz):
    path = write_idx(tmp_path / "images.gz", np.zeros((5, 4, 4), np.uint8), gz=gz, dims=(6, 4, 4))
    e = refused(lambda: idx.read_idx(path), "truncated", "6x4x4", "96 bytes", name=path)
    assert "80 bytes follow" in e.diagnostics[0].message


@pytest.mark.parametrize("gz", [True, False])
def test_idx_header_announces_less_than_the_file_holds(tmp_path, gz):
    path = write_idx(tmp_path / "images.gz", np.zeros((5, 4, 4), np.uint8), gz=gz, dims=(4, 4, 4))
    refused(lambda: idx.read_idx(path), "more data than its header announces", "4x4x4", name=path)


@pytest.mark.parametrize("head", [b"\x00\x00\x07\x03", b"\x01\x00\x08\x03", b"\x00\x00\x08\x00", b"\x00\x00\x08\x09",
                                  b"PK\x03\x04"])
def test_idx_wrong_magic_number(tmp_path, head):
    path = tmp_path / "images"
    path.write_bytes(head + b"\x00" * 64)
    e = refused(lambda: idx.read_idx(path), "not an IDX file", head.hex(), name=path)
    assert "0x00000803" in e.diagnostics[0].hint


def test_idx_absurd_header_refused_before_reading(tmp_path):
    path = tmp_path / "huge"
    path.write_bytes(struct.pack(">HBB4I", 0, 0x08, 4, 60000, 1000, 1000, 1000))
    refused(lambda: idx.read_idx(path), "more than the limit", name=path)


def test_idx_corrupt_gzip_stream(tmp_path):
    good = gzip.compress(idx_bytes(np.arange(2000, dtype=np.uint32).astype(np.uint8).reshape(20, 10, 10)), mtime=0)
    corrupt = bytearray(good)
    corrupt[len(good) // 2] ^= 0xFF
    path = tmp_path / "images.gz"
    path.write_bytes(bytes(corrupt))
    refused(lambda: idx.read_idx(path), "gzip", name=path)
    path.write_bytes(good[:len(good) - 20])  # cut short: the stream ends early
    refused(lambda: idx.read_idx(path), name=path)
    path.write_bytes(good[:-4] + b"\x00\x00\x00\x00")  # the length in the trailer is wrong
    refused(lambda: idx.read_idx(path), "gzip", name=path)


def test_idx_image_and_label_counts_differ(tmp_path):
    write_set(tmp_path)
    labels = tmp_path / "train-labels-idx1-ubyte.gz"
    write_idx(labels, np.zeros(59, np.uint8))
    refused(lambda: data.load(tmp_path), "60 train images but 59 labels", name=labels)


def test_idx_labels_out_of_range(tmp_path):
    write_set(tmp_path)
    labels = tmp_path / "t10k-labels-idx1-ubyte.gz"
    write_idx(labels, np.array([0, 1, -1] + [0] * 17, np.int8))
    refused(lambda: data.load(tmp_path), "a test label is -1", name=labels)
    write_idx(labels, np.array([5000] + [0] * 19, ">i2"))
    refused(lambda: data.load(tmp_path), "a test label is 5000", name=labels)


def test_idx_labels_must_be_one_per_sample(tmp_path):
    write_set(tmp_path)
    labels = tmp_path / "train-labels-idx1-ubyte.gz"
    write_idx(labels, np.zeros((60, 2), np.uint8))
    refused(lambda: data.load(tmp_path), "one per sample", name=labels)


def test_idx_folder_missing_a_file(tmp_path):
    write_set(tmp_path)
    (tmp_path / "t10k-images-idx3-ubyte.gz").unlink()
    refused(lambda: data.load(tmp_path), "no test images file", "t10k-images-idx3-ubyte.gz", name=tmp_path)


def test_labels_beyond_the_networks_classes_are_refused_before_training(tmp_path):
    write_set(tmp_path / "set", classes=12)
    spec = tmp_path / "m.net"
    spec.write_text("input 784\nAffine(10) -> SoftmaxWithLoss\n")
    with pytest.raises(DataError) as info:
        api.training(spec, out=tmp_path / "run", data=str(tmp_path / "set"), iters=2)
    d = info.value.diagnostics[0]
    assert "labels go up to 11" in d.message and "10 scores" in d.message and d.span.line == 2


# --- .npz ----------------------------------------------------------------------------------------

def test_npz_loads_and_keeps_its_dtype(tmp_path):
    x, t, xt, tt = small_arrays(shape=(784,))
    np.savez(tmp_path / "d.npz", x_train=x, t_train=t, x_test=xt, t_test=tt)
    d = data.load(tmp_path / "d.npz")
    np.testing.assert_array_equal(d.x_train, x)
    assert d.name == "d" and d.scale() == 1 / 255
    np.savez(tmp_path / "f.npz", x_train=x / 255, t_train=t, x_test=xt / 255, t_test=tt)
    assert data.load(tmp_path / "f.npz").scale() == 1.0


def test_npz_one_hot_labels(tmp_path):
    x, t, xt, tt = small_arrays(shape=(784,))
    eye = np.eye(10, dtype=np.float32)
    np.savez(tmp_path / "d.npz", x_train=x, t_train=eye[t], x_test=xt, t_test=eye[tt])
    d = data.load(tmp_path / "d.npz")
    np.testing.assert_array_equal(d.t_train, t)
    np.testing.assert_array_equal(d.t_test, tt)


def test_npz_missing_keys(tmp_path):
    x, t, xt, tt = small_arrays(shape=(784,))
    path = tmp_path / "d.npz"
    np.savez(path, x_train=x, t_train=t, images=xt)
    refused(lambda: data.load(path), "lacks x_test, t_test", "it has", name=path)


def test_npz_object_arrays_refused(tmp_path):
    x, t, xt, tt = small_arrays(shape=(784,))
    path = tmp_path / "d.npz"
    objects = np.empty(len(t), dtype=object)
    objects[:] = [int(v) for v in t]
    np.savez(path, x_train=x, t_train=objects, x_test=xt, t_test=tt)  # numpy pickles object arrays
    refused(lambda: data.load(path), "cannot be read without running code", name=path)


def test_npz_corrupt_or_not_an_archive(tmp_path):
    x, t, xt, tt = small_arrays(shape=(784,))
    path = tmp_path / "d.npz"
    np.savez(path, x_train=x, t_train=t, x_test=xt, t_test=tt)
    whole = path.read_bytes()
    path.write_bytes(whole[:len(whole) // 2])
    refused(lambda: data.load(path), "not a readable .npz file", name=path)
    path.write_bytes(b"x_train,t_train\n1,2\n")
    refused(lambda: data.load(path), "not an .npz file", name=path)


def test_npz_holding_a_single_npy_array_is_refused(tmp_path):
    """Regression: np.load returns a bare array for .npy bytes, which crashed `with ... as z`."""
    path = tmp_path / "d.npz"
    with open(path, "wb") as f:
        np.save(f, np.zeros((3, 784), np.uint8))
    refused(lambda: data.load(path), "a single .npy array", name=path)
    refused(lambda: imagefiles.read_images(path), "a single .npy array", name=path)
    npy = tmp_path / "x.npy"
    with open(npy, "wb") as f:
        np.savez(f, x=np.zeros((3, 784), np.uint8))
    refused(lambda: imagefiles.read_images(npy), "an .npz archive", name=npy)


def test_mismatched_train_and_test_samples(tmp_path):
    x, t, _, tt = small_arrays(shape=(784,))
    np.savez(tmp_path / "d.npz", x_train=x, t_train=t, x_test=np.zeros((20, 783), np.uint8), t_test=tt)
    refused(lambda: data.load(tmp_path / "d.npz"), "(784,)", "(783,)")


def test_data_that_does_not_fit_the_input_is_refused_before_training(tmp_path):
    x, t, xt, tt = small_arrays(shape=(10,))
    np.savez(tmp_path / "d.npz", x_train=x, t_train=t, x_test=xt, t_test=tt)
    spec = tmp_path / "m.net"
    spec.write_text("# a model\ninput 784\nAffine(10) -> SoftmaxWithLoss\n")
    out = tmp_path / "run"
    with pytest.raises(DataError) as info:
        api.training(spec, out=out, data=str(tmp_path / "d.npz"), iters=2)
    d = info.value.diagnostics[0]
    assert "10 (10 values)" in d.message and "784" in d.message
    assert d.span is not None and d.span.line == 2  # the `input` line
    assert not out.exists() or sorted(p.name for p in out.iterdir()) == []  # nothing written, lock released


def test_unknown_names_and_single_files(tmp_path):
    e = refused(lambda: data.load("no-such-set"), "no such file, folder or data set")
    assert "mnist" in e.diagnostics[0].hint and "fashion-mnist" in e.diagnostics[0].hint
    path = write_idx(tmp_path / "train-images-idx3-ubyte.gz", np.zeros((2, 2, 2), np.uint8))
    refused(lambda: data.load(path), "a single data file is not a data set", name=path)


# --- batches -------------------------------------------------------------------------------------

def test_batches_scale_uint8_per_batch():
    d = data.load(None)
    b = data.Batches(d.x_train, d.scale(), np.float32, (784,))
    index = np.array([3, 0, 7])
    x = b.take(index)
    assert x.shape == (3, 784) and x.dtype == np.float32
    np.testing.assert_allclose(x, d.x_train[index].reshape(3, 784) / 255, rtol=1e-6)
    assert 0.0 <= x.min() and x.max() <= 1.0
    assert b.take(np.array([1, 2, 4])) is x  # one buffer per batch size, reused
    assert d.x_train.dtype == np.uint8  # the stored data stays uint8
    chunks = list(b.chunks(1500))
    assert [start for start, _ in chunks] == [0, 1500, 3000] and len(chunks[-1][1]) == 1000


# --- lookup and download -------------------------------------------------------------------------

@pytest.fixture
def places_env(tmp_path, monkeypatch):
    """SPECC_DATA and XDG_CACHE_HOME in temporary folders; no proxies for the local server."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("SPECC_DATA", str(tmp_path / "specc-data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    return tmp_path


def test_places_in_documented_order(places_env, monkeypatch):
    assert data.places("mnist") == [places_env / "specc-data" / "mnist", places_env / "xdg-cache" / "specc" / "mnist",
                                    Path("/usr/share/datasets/mnist")]
    monkeypatch.delenv("SPECC_DATA")
    assert data.places("mnist")[0] == places_env / "xdg-cache" / "specc" / "mnist"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(places_env / "home"))
    assert data.cache_dir() == places_env / "home" / ".cache" / "specc"


def test_specc_data_is_found_before_the_cache(places_env, monkeypatch):
    write_set(places_env / "specc-data" / "mnist", n_train=30)
    write_set(places_env / "xdg-cache" / "specc" / "mnist", n_train=40)

    def no_download(named, target):
        raise AssertionError("nothing should be downloaded")

    d = data.load("mnist", download=no_download)
    assert d.name == "mnist" and len(d.x_train) == 30 and d.origin == str(places_env / "specc-data" / "mnist")
    monkeypatch.delenv("SPECC_DATA")
    assert len(data.load("MNIST", download=no_download).x_train) == 40  # names are matched in any case


@pytest.fixture
def served(tmp_path):
    """A local HTTP server on 127.0.0.1 serving tmp_path/www (never the internet)."""
    root = tmp_path / "www"
    root.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()
    server.server_close()


def md5s(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_fetch_downloads_and_verifies(places_env, served):
    root, url = served
    arrays = write_set(root)
    named = data.NamedSet("tiny", md5s(root), ("http://127.0.0.1:9/unused/",))
    target = places_env / "target"
    data.fetch(named, target, mirrors=[url], timeout=5)
    assert md5s(target) == named.files  # every file, nothing else (no .part left)
    np.testing.assert_array_equal(data.load_folder(target).t_test, arrays[3])


def test_load_downloads_a_named_set_into_the_cache(places_env, served, monkeypatch):
    root, url = served
    write_set(root)
    monkeypatch.setitem(data.NAMED, "tiny", data.NamedSet("tiny", md5s(root), (url,)))
    d = data.load("tiny")
    cache = places_env / "xdg-cache" / "specc" / "tiny"
    assert d.origin == str(cache) and sorted(p.name for p in cache.iterdir()) == sorted(md5s(root))
    for p in root.iterdir():  # a second load finds the cache and asks no server
        p.unlink()
    assert len(data.load("tiny").x_train) == 60


def test_fetch_skips_files_already_verified(places_env):
    target = places_env / "target"
    write_set(target)
    named = data.NamedSet("tiny", md5s(target), ("http://127.0.0.1:9/",))
    data.fetch(named, target, timeout=2)  # nothing to download, so the dead mirror is never asked


def test_fetch_checksum_mismatch(places_env, served):
    root, url = served
    write_set(root)
    files = md5s(root)
    files["t10k-images-idx3-ubyte.gz"] = "0" * 32
    target = places_env / "target"
    e = refused(lambda: data.fetch(data.NamedSet("tiny", files, ()), target, mirrors=[url], timeout=5),
                "checksum mismatch", "could not download tiny")
    assert e.name == "tiny"
    left = [p.name for p in target.iterdir()]
    assert "t10k-images-idx3-ubyte.gz" not in left and not [n for n in left if n.endswith(".part")]


def unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_fetch_unreachable_mirror_says_where_to_put_the_files(places_env, monkeypatch):
    monkeypatch.setitem(data.NAMED, "tiny", data.NamedSet("tiny", {"a.gz": "0" * 32, "b.gz": "1" * 32},
                                                          (f"http://127.0.0.1:{unused_port()}/",)))
    e = refused(lambda: data.load("tiny"), "could not download tiny")
    hint = e.diagnostics[0].hint
    assert "a.gz" in hint and "b.gz" in hint and "--data FOLDER" in hint
    for place in data.places("tiny"):
        assert str(place) in hint
    assert not [p for p in (places_env / "xdg-cache" / "specc" / "tiny").iterdir()]


def test_fetch_cut_transfer_is_a_data_error(places_env):
    """Regression: a chunked transfer cut short raised http.client.IncompleteRead, a traceback."""

    class Cut(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.write(b"400\r\n" + b"x" * 10)  # announces 1,024 bytes, sends 10, hangs up
            self.wfile.flush()
            self.close_connection = True

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Cut)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        target = places_env / "target"
        named = data.NamedSet("tiny", {"a.gz": "0" * 32}, ())
        refused(lambda: data.fetch(named, target, mirrors=[f"http://127.0.0.1:{server.server_port}/"], timeout=5),
                "could not download tiny")
        assert list(target.iterdir()) == []
    finally:
        server.shutdown()
        server.server_close()
