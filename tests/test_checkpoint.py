"""Checkpoints (specc.checkpoint): atomic .npz writes, loading without pickle, and every checkpoint
that cannot be used (mismatched names or shapes, corrupt, pickled) refused with DataError pointing
at the .net lines."""
from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

import specc
from specc import api
from specc.diagnostics import render
from specc.errors import DataError
from specc.training import checkpoint

SMALL = "input 784\nAffine(20) -> ReLU\n  -> Affine(10)\n  -> SoftmaxWithLoss\n"
WITH_BN = "input 784\nAffine(20) -> BatchNorm -> ReLU -> Dropout(0.2)\n  -> Affine(10) -> SoftmaxWithLoss\n"


def compiled(tmp_path: Path, text: str, name: str = "m.net", seed: int = 0):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return api.load(path, seed=seed)


def rendered(e: DataError) -> str:
    console = Console(file=io.StringIO(), width=120, color_system=None, highlight=False)
    render(e, console)
    return console.file.getvalue()


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp") or p.name.startswith("."))


def test_round_trip_with_state_and_meta(tmp_path):
    net = compiled(tmp_path, WITH_BN)
    assert net.state  # BatchNorm's running mean and variance
    for k, v in net.state.items():
        v[...] = np.arange(v.size).reshape(v.shape) * 0.5  # BatchNorm's running statistics
    path = tmp_path / "w.npz"
    checkpoint.save(path, net, {"m/W1": np.ones((784, 20)), "steps": np.array(3)}, {"iteration": 7, "note": "x"})
    assert leftovers(tmp_path) == []
    other = compiled(tmp_path, WITH_BN, seed=1)
    assert not np.array_equal(other.params["W1"], net.params["W1"])
    arrays = checkpoint.restore(other, path, other.source)
    for k in net.params:
        np.testing.assert_array_equal(other.params[k], net.params[k])
    for k in net.state:
        np.testing.assert_array_equal(other.state[k], net.state[k])
    assert checkpoint.meta(arrays) == {"iteration": 7, "note": "x"}
    opt = checkpoint.optimizer_state(arrays)
    assert set(opt) == {"m/W1", "steps"} and int(opt["steps"]) == 3


def test_loaded_without_pickle(tmp_path, monkeypatch):
    """Arrays are read from their .npy headers and raw bytes: nothing that can unpickle is called."""
    import pickle
    net = compiled(tmp_path, SMALL)
    path = tmp_path / "w.npz"
    checkpoint.save(path, net)

    def forbidden(*args, **kwargs):
        raise AssertionError("a checkpoint is read without pickle")

    for module, name in ((pickle, "load"), (pickle, "loads"), (np, "load"), (np.lib.format, "read_array")):
        monkeypatch.setattr(module, name, forbidden)
    checkpoint.restore(net, path, net.source)


def test_written_atomically(tmp_path, monkeypatch):
    """A write that fails halfway leaves the previous checkpoint as it was, and no temporary file."""
    net = compiled(tmp_path, SMALL)
    path = tmp_path / "weights.npz"
    checkpoint.save(path, net, meta={"iteration": 1})
    before = path.read_bytes()

    def broken(f, **arrays):
        f.write(b"PK\x03\x04 half a zip")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken)
    net.params["W1"] += 1
    with pytest.raises(specc.RunError) as info:  # reported as specc's error, not an OSError traceback
        checkpoint.save(path, net, meta={"iteration": 2})
    assert "disk full" in info.value.diagnostics[0].message
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.net", "weights.npz"]


def test_plain_savez_of_params_is_accepted(tmp_path):
    """np.savez(path, **net.params), as a learner following the book would save."""
    net = compiled(tmp_path, SMALL)
    path = tmp_path / "params.npz"
    np.savez(path, **{k: v * 2 for k, v in net.params.items()})
    other = compiled(tmp_path, SMALL, seed=5)
    checkpoint.restore(other, path, other.source)
    np.testing.assert_array_equal(other.params["W2"], net.params["W2"] * 2)


def test_mismatched_names_and_shapes_are_refused_with_their_lines(tmp_path):
    trained = compiled(tmp_path, "input 784\nAffine(10) -> SoftmaxWithLoss\n", "small.net")
    path = tmp_path / "w.npz"
    checkpoint.save(path, trained)
    net = compiled(tmp_path, SMALL)
    before = {k: v.copy() for k, v in net.params.items()}
    with pytest.raises(DataError) as info:
        checkpoint.restore(net, path, net.source)
    e = info.value
    by_name = {}
    for d in e.diagnostics:
        assert d.code == "checkpoint-mismatch"
        for name in ("W1", "b1", "W2", "b2"):
            if f"'{name}'" in d.message:
                by_name[name] = d
    assert set(by_name) == {"W1", "b1", "W2", "b2"} and len(e.diagnostics) == 4
    assert "784x10 in checkpoint w.npz" in by_name["W1"].message and "needs 784x20" in by_name["W1"].message
    assert "'b1' is 10" in by_name["b1"].message
    assert "has no 'W2' (20x10)" in by_name["W2"].message and "has no 'b2'" in by_name["b2"].message
    assert by_name["W1"].span.line == 2 and by_name["W2"].span.line == 3  # the lines that declare them
    text = rendered(e)
    assert "m.net:2:1" in text and "2 | Affine(20) -> ReLU" in text
    assert "m.net:3:6" in text and "3 |   -> Affine(10)" in text
    assert "4 errors" in text
    for k, v in before.items():  # nothing was half-loaded
        np.testing.assert_array_equal(net.params[k], v)


def test_undeclared_and_non_float_arrays_are_refused(tmp_path):
    net = compiled(tmp_path, "input 784\nAffine(10) -> SoftmaxWithLoss\n")
    path = tmp_path / "w.npz"
    np.savez(path, **{"param/W1": np.zeros((784, 10), np.int64), "param/b1": np.zeros(10, np.float32),
                      "param/W9": np.zeros(3, np.float32), "meta": np.array("{}")})
    with pytest.raises(DataError) as info:
        checkpoint.restore(net, path, net.source)
    messages = [d.message for d in info.value.diagnostics]
    assert any("'W9' (3), which this spec does not declare" in m for m in messages)
    assert any("'W1'" in m and "int64" in m for m in messages)


def test_mismatch_inside_a_block_notes_where_it_comes_from(tmp_path):
    text = "block Dense(n) = Affine(n) -> ReLU\ninput 784\nDense(30) -> Affine(10) -> SoftmaxWithLoss\n"
    checkpoint.save(tmp_path / "w.npz", compiled(tmp_path, text.replace("Dense(30)", "Dense(40)"), "old.net"))
    net = compiled(tmp_path, text)
    with pytest.raises(DataError) as info:
        checkpoint.restore(net, tmp_path / "w.npz", net.source)
    out = rendered(info.value)
    assert "1 | block Dense(n) = Affine(n) -> ReLU" in out and "3 | Dense(30)" in out and "from Dense" in out


def corrupt_files(tmp_path: Path, net) -> dict[str, Path]:
    good = tmp_path / "good.npz"
    checkpoint.save(good, net, meta={"iteration": 1})
    whole = good.read_bytes()
    files = {}
    files["truncated"] = tmp_path / "truncated.npz"
    files["truncated"].write_bytes(whole[:len(whole) // 2])
    flipped = bytearray(whole)
    at = whole.find(b"\x93NUMPY") + 200  # inside the first array's data
    flipped[at] ^= 0xFF
    files["bad crc"] = tmp_path / "flipped.npz"
    files["bad crc"].write_bytes(bytes(flipped))
    files["empty"] = tmp_path / "empty.npz"
    files["empty"].write_bytes(b"")
    files["text"] = tmp_path / "text.npz"
    files["text"].write_text("W1 = [[0.1, 0.2]]\n")
    files["npy"] = tmp_path / "single.npz"
    with open(files["npy"], "wb") as f:
        np.save(f, net.params["W1"])
    objects = np.empty(2, dtype=object)
    objects[:] = [net.params["W1"], "code"]
    files["pickled"] = tmp_path / "pickled.npz"
    np.savez(files["pickled"], **{"param/W1": objects, "param/b1": net.params["b1"]})
    files["missing"] = tmp_path / "missing.npz"
    return files


@pytest.mark.parametrize("kind, says", [
    ("truncated", "corrupt or truncated"), ("bad crc", "corrupt or truncated"), ("empty", "not an .npz"),
    ("text", "not an .npz"), ("npy", "not an .npz"), ("pickled", "would need pickle"),
    ("missing", "no such checkpoint file"),
])
def test_unusable_files_are_data_errors(tmp_path, kind, says):
    net = compiled(tmp_path, "input 784\nAffine(10) -> SoftmaxWithLoss\n")
    path = corrupt_files(tmp_path, net)[kind]
    with pytest.raises(DataError) as info:
        checkpoint.restore(net, path, net.source)
    assert says in info.value.diagnostics[0].message
    assert info.value.name == str(path) and info.value.exit_code == 2
    text = rendered(info.value)
    assert str(path) in text and "Traceback" not in text


def test_meta_of_a_plain_file_is_empty(tmp_path):
    net = compiled(tmp_path, SMALL)
    checkpoint.save(tmp_path / "w.npz", net)
    assert checkpoint.meta(checkpoint.read(tmp_path / "w.npz")) == {}
    assert checkpoint.meta({"meta": np.array("not json")}) == {}
    assert json.loads(str(checkpoint.read(tmp_path / "w.npz")["meta"])) == {}
