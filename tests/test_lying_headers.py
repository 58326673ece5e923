"""Files that claim more than they hold: tiny checkpoints, .npz and IDX files whose headers declare
huge arrays are refused from their headers (DataError naming the file, the size claimed and the
limit), before any data is read or inflated; on the command line, exit 2 and no traceback."""
from __future__ import annotations

import gzip
import io
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from specc import api, cli
from specc.errors import DataError
from specc.training import checkpoint, data, idx, imagefiles, npyio

SPEC = "input 784\nAffine(10) -> SoftmaxWithLoss\n"


def npy_header(shape: tuple[int, ...], descr: str = "<f4") -> bytes:
    f = io.BytesIO()
    np.lib.format.write_array_header_1_0(f, {"descr": descr, "fortran_order": False, "shape": shape})
    return f.getvalue()


def lying_npz(path: Path, members: dict[str, tuple[int, ...] | np.ndarray], body: bytes = b"\x00" * 16) -> Path:
    """An .npz whose members are real arrays or bare headers declaring `shape` followed by `body`."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for key, m in members.items():
            if isinstance(m, np.ndarray):
                f = io.BytesIO()
                np.save(f, m)
                z.writestr(key + ".npy", f.getvalue())
            else:
                z.writestr(key + ".npy", npy_header(m, "|u1" if key.startswith("x") else "<f4") + body)
    return path


def run_cli(*argv) -> tuple[int, str]:
    out = Console(file=io.StringIO(), width=200, color_system=None, highlight=False)
    err = Console(file=io.StringIO(), width=200, color_system=None, highlight=False)
    code = cli.run([str(a) for a in argv], out, err)
    return code, err.file.getvalue()


@pytest.fixture
def spec(tmp_path) -> Path:
    path = tmp_path / "m.net"
    path.write_text(SPEC)
    return path


def no_body_read(monkeypatch) -> None:
    def forbidden(*args, **kwargs):
        raise AssertionError("no data may be read before the headers are checked")
    monkeypatch.setattr(npyio, "read_body", forbidden)


# --- checkpoints -------------------------------------------------------------------------------

def test_checkpoint_declaring_a_trillion_values_is_refused_from_its_header(tmp_path, spec, monkeypatch):
    weights = lying_npz(tmp_path / "w.npz", {"param/W1": (10**6, 10**6), "param/b1": (10,)})
    assert weights.stat().st_size < 1024
    no_body_read(monkeypatch)
    with pytest.raises(DataError) as info:
        api.trained(spec, weights)
    message = info.value.diagnostics[0].message
    assert "'W1' is 1000000x1000000 in checkpoint w.npz" in message and "needs 784x10" in message
    code, err = run_cli("eval", spec, "--weights", weights)
    assert code == 2 and "1000000x1000000" in err and "Traceback" not in err


def test_compressed_checkpoint_of_the_wrong_shape_is_not_inflated(tmp_path, spec, monkeypatch):
    """Regression: a 1 MB compressed member was inflated to 1 GB before its shape was compared."""
    zeros = np.zeros((784, 1000), np.float32)
    weights = tmp_path / "w.npz"
    np.savez_compressed(weights, **{"param/W1": zeros, "param/b1": np.zeros(10, np.float32), "meta": np.array("{}")})
    no_body_read(monkeypatch)
    with pytest.raises(DataError) as info:
        api.trained(spec, weights)
    assert "'W1' is 784x1000" in info.value.diagnostics[0].message


def test_checkpoint_extra_arrays_declaring_more_than_the_limit(tmp_path, spec, monkeypatch):
    net = api.load(spec)
    weights = tmp_path / "w.npz"
    checkpoint.save(weights, net)
    with zipfile.ZipFile(weights, "a") as z:
        z.writestr("opt/m/W1.npy", npy_header((10**12,)) + b"\x00" * 8)
    monkeypatch.setenv("SPECC_MAX_MEMORY", "1G")
    for call in (lambda: checkpoint.restore(net, weights), lambda: checkpoint.read(weights)):
        with pytest.raises(DataError) as info:
            call()
        d = info.value.diagnostics[0]
        assert info.value.name == str(weights) and d.code == "too-large"
        assert "'opt/m/W1' alone is 1000000000000 float32 values (4,000,000,000,000 bytes)" in d.message
        assert f"more than the limit of {1024**3:,} bytes" in d.message


def test_checkpoint_member_shorter_or_longer_than_its_header(tmp_path, spec):
    net = api.load(spec)
    for body, says in ((b"\x00" * 12, "only 12 bytes"), (b"\x00" * 44, "more data")):
        weights = lying_npz(tmp_path / "w.npz", {"param/W1": net.params["W1"], "param/b1": (10,)}, body)
        with pytest.raises(DataError) as info:
            checkpoint.restore(net, weights)
        d = info.value.diagnostics[0]
        assert "'param/b1' declares 10 float32 values (40 bytes)" in d.message and says in d.message
        assert info.value.name == str(weights)


# --- .npz data --------------------------------------------------------------------------------

def test_npz_declaring_ten_trillion_images(tmp_path, spec, monkeypatch):
    path = lying_npz(tmp_path / "d.npz", {"x_train": (10**13, 784), "t_train": (10**13,),
                                          "x_test": (10, 784), "t_test": (10,)})
    assert path.stat().st_size < 2048
    no_body_read(monkeypatch)
    with pytest.raises(DataError) as info:
        data.load(path)
    d = info.value.diagnostics[0]
    assert info.value.name == str(path)
    assert "x_train" in d.message and "10000000000000x784 uint8 values" in d.message
    assert f"more than the limit of {data.data_limit():,} bytes" in d.message
    monkeypatch.undo()
    code, err = run_cli("train", spec, "--data", path, "--out", tmp_path / "run")
    assert code == 2 and "10000000000000x784" in err and "Traceback" not in err


def test_npz_counts_are_compared_from_the_headers(tmp_path, monkeypatch):
    path = lying_npz(tmp_path / "d.npz", {"x_train": (60, 784), "t_train": (59,), "x_test": (10, 784),
                                          "t_test": (10,)})
    no_body_read(monkeypatch)
    with pytest.raises(DataError) as info:
        data.load(path)
    assert "60 train images but 59 labels" in info.value.diagnostics[0].message


def test_npz_images_to_predict_declaring_too_much(tmp_path, monkeypatch):
    path = lying_npz(tmp_path / "x.npz", {"x": (10**13, 784)})
    no_body_read(monkeypatch)
    with pytest.raises(DataError) as info:
        imagefiles.read_images(path)
    assert "10000000000000x784" in info.value.diagnostics[0].message and info.value.name == str(path)


def test_npy_images_to_predict_declaring_too_much(tmp_path, spec):
    path = tmp_path / "x.npy"
    path.write_bytes(npy_header((10**13, 784), "|u1") + b"\x00" * 100)
    with pytest.raises(DataError) as info:
        imagefiles.read_images(path)
    assert "10000000000000x784 uint8 values" in info.value.diagnostics[0].message


# --- IDX --------------------------------------------------------------------------------------

def idx_gz(path: Path, dims: tuple[int, ...], body: bytes) -> Path:
    head = struct.pack(">HBB", 0, 0x08, len(dims)) + struct.pack(f">{len(dims)}I", *dims)
    path.write_bytes(gzip.compress(head + body, mtime=0))
    return path


def test_idx_counts_are_compared_before_any_body_is_inflated(tmp_path, monkeypatch):
    """Regression: a 1.5 MB gzip of 2,000,000 zero images was inflated (1.6 GB) before the label count
    refused it. Here the images file is small, but its body is never read."""
    folder = tmp_path / "set"
    folder.mkdir()
    idx_gz(folder / "train-images-idx3-ubyte.gz", (2_000_000, 28, 28), b"\x00" * 1000)
    idx_gz(folder / "train-labels-idx1-ubyte.gz", (60,), b"\x00" * 60)
    idx_gz(folder / "t10k-images-idx3-ubyte.gz", (10, 28, 28), b"\x00" * 7840)
    idx_gz(folder / "t10k-labels-idx1-ubyte.gz", (10,), b"\x00" * 10)
    reads = []
    real = idx._read_idx_body
    monkeypatch.setattr(data, "_read_idx_body", lambda *a: reads.append(a) or real(*a))
    with pytest.raises(DataError) as info:
        data.load(folder)
    assert "2,000,000 train images but 60 labels" in info.value.diagnostics[0].message
    assert info.value.name == str(folder / "train-labels-idx1-ubyte.gz") and reads == []


def test_idx_folder_declaring_more_than_the_budget(tmp_path, monkeypatch):
    folder = tmp_path / "set"
    folder.mkdir()
    idx_gz(folder / "train-images-idx3-ubyte.gz", (2_000_000, 28, 28), b"\x00" * 1000)
    idx_gz(folder / "train-labels-idx1-ubyte.gz", (2_000_000,), b"\x00" * 1000)
    idx_gz(folder / "t10k-images-idx3-ubyte.gz", (10, 28, 28), b"\x00" * 7840)
    idx_gz(folder / "t10k-labels-idx1-ubyte.gz", (10,), b"\x00" * 10)
    monkeypatch.setenv("SPECC_MAX_MEMORY", "1G")
    with pytest.raises(DataError) as info:
        data.load(folder)
    d = info.value.diagnostics[0]
    assert "2000000x28x28" in d.message and "1,568,000,000 bytes" in d.message
    assert f"limit of {1024**3:,} bytes" in d.message and info.value.name == str(folder / "train-images-idx3-ubyte.gz")


def test_idx_body_is_inflated_no_further_than_its_header_declares(tmp_path, monkeypatch):
    """A gzip stream holding far more than its header says is cut at the declared size + 1 byte."""
    path = idx_gz(tmp_path / "x.gz", (2, 2, 2), b"\x00" * 10_000_000)
    asked = []
    real = gzip.GzipFile.read
    monkeypatch.setattr(gzip.GzipFile, "read", lambda self, n=-1: asked.append(n) or real(self, n))
    with pytest.raises(DataError) as info:
        idx.read_idx(path)
    assert "more data than its header announces" in info.value.diagnostics[0].message
    assert all(0 <= n <= 16 for n in asked), asked
