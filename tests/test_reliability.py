"""Nothing is lost: checkpoints survive kills at any moment and full disks; runs do not collide."""
from __future__ import annotations

import errno
import json
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from helpers import ROOT, new_console
from rich.console import Console

import specc
from specc import cli
from specc.training import checkpoint
from specc.training.events import deterministic

KILLS = int(os.environ.get("SPECC_KILL_RUNS", "12"))

WRITER = r"""
import sys, numpy as np, specc
from specc.training import checkpoint
net = specc.compile("input 784\nAffine(400) -> ReLU -> Affine(10) -> SoftmaxWithLoss")
path = sys.argv[1]
i = 0
while True:
    for v in net.params.values():
        v += 1.0
    checkpoint.save(path, net, {"steps": np.array(i)}, {"iteration": i})
    if i == 0:
        print("ready", flush=True)
    i += 1
"""


def test_a_checkpoint_killed_at_any_moment_stays_readable(tmp_path):
    path = tmp_path / "weights.npz"
    rnd = random.Random(0)
    unreadable = 0
    for _ in range(KILLS):
        child = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE,
                                 cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert child.stdout.readline().strip() == b"ready"
        time.sleep(rnd.uniform(0, 0.25))  # somewhere in the middle of a write, most of the time
        child.send_signal(signal.SIGKILL)
        child.wait()
        try:
            arrays = checkpoint.read(path)
            values = {k: v for k, v in arrays.items() if k.startswith("param/")}
            # every parameter was written by the same save: all hold the same number of increments
            offsets = {round(float(v.reshape(-1)[0] - v.reshape(-1)[0] // 1), 3) for v in values.values()}
            assert values and offsets
        except specc.SpeccError:
            unreadable += 1
    assert unreadable == 0
    assert not [p for p in tmp_path.iterdir() if p.name != "weights.npz" and not p.name.endswith(".tmp")]


def test_a_full_disk_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    net = specc.compile("input 4\nAffine(3) -> SoftmaxWithLoss")
    path = tmp_path / "weights.npz"
    checkpoint.save(path, net, None, {"iteration": 1})
    before = path.read_bytes()

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "savez", no_space)
    with pytest.raises(specc.RunError) as info:
        checkpoint.save(path, net, None, {"iteration": 2})
    d = info.value.diagnostics[0]
    assert "No space left on device" in d.message and "previous checkpoint is unchanged" in d.hint
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["weights.npz"]


def _console() -> Console:
    return new_console(120)


def test_a_training_whose_disk_fills_up_stops_cleanly(tmp_path, monkeypatch):
    real = np.savez
    calls = {"n": 0}

    def fills_up(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 2:  # weights.npz and best.npz of epoch 1 are written, then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(*args, **kwargs)

    monkeypatch.setattr(np, "savez", fills_up)
    out, err = _console(), _console()
    code = cli.run(["train", str(ROOT / "models" / "two_layer_net.net"), "--epochs", "3", "--out",
                    str(tmp_path / "run")], out, err)
    text = err.file.getvalue()
    assert code == 1
    assert "cannot write the checkpoint: No space left on device" in text
    assert "Traceback" not in text + out.file.getvalue()
    monkeypatch.setattr(np, "savez", real)
    assert json.loads(str(checkpoint.read(tmp_path / "run" / "weights.npz")["meta"]))["iteration"] == 40


def test_two_trainings_at_once_into_different_folders(tmp_path):
    cmd = [sys.executable, "-m", "specc", "train", str(ROOT / "models" / "two_layer_net.net"), "--epochs", "2"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1"}
    runs = [subprocess.Popen(cmd + ["--out", str(tmp_path / name)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env=env) for name in ("a", "b")]
    for r in runs:
        r.communicate(timeout=120)
        assert r.returncode == 0
    metrics = [[deterministic(json.loads(line)) for line in
                (tmp_path / name / "metrics.jsonl").read_text().splitlines()] for name in ("a", "b")]
    assert metrics[0] == metrics[1] and len(metrics[0]) == 2


def test_training_writes_nothing_outside_its_run_folder(tmp_path):
    spec = tmp_path / "m.net"
    spec.write_text('input 784\nAffine(10) -> SoftmaxWithLoss\ntrain { epochs = 1 data = "../../../../etc" }\n')
    before = sorted(p.name for p in tmp_path.iterdir())
    out, err = _console(), _console()
    code = cli.run(["train", str(spec), "--out", str(tmp_path / "run")], out, err)
    assert code == 2 and "etc" in err.file.getvalue()  # a path to read data from, refused as no data set
    code = cli.run(["train", str(spec), "--data", "mnist-5k", "--out", str(tmp_path / "run")], out, err)
    assert code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(before + ["run"])
