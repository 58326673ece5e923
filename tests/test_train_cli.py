"""`specc train`, `specc eval` and `specc predict` through specc.cli.run(argv, stdout, stderr), and
Ctrl-C on a real `specc train` process: exit codes, the per-epoch lines, the run folder, refusals,
divergence and resuming."""
from __future__ import annotations

import io
import json
import math
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from helpers import ROOT
from rich.console import Console

import specc
from specc import api, cli
from specc.training import checkpoint, data, plot
from specc.training.events import deterministic

TWO_LAYER = ROOT / "models" / "two_layer_net.net"
EPOCH_LINE = re.compile(r"^\s+(\d+)\s+([\d,]+)\s+\d+\.\d{4}\s+\d\.\d{4}\s+\d\.\d{4}\s")


class Result:
    def __init__(self, code: int, out: str, err: str):
        self.code, self.out, self.err = code, out, err

    @property
    def text(self) -> str:
        return self.out + self.err


def specc_run(*argv) -> Result:
    def console() -> Console:
        return Console(file=io.StringIO(), width=120, color_system=None, force_terminal=False, highlight=False)

    out, err = console(), console()
    code = cli.run([str(a) for a in argv], out, err)
    return Result(code, out.file.getvalue(), err.file.getvalue())


def epoch_lines(text: str) -> list[tuple[int, int]]:
    return [(int(m[1]), int(m[2].replace(",", ""))) for m in map(EPOCH_LINE.match, text.splitlines()) if m]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Result]:
    """`specc train models/two_layer_net.net --epochs 2 --out DIR`, once for the module."""
    out = tmp_path_factory.mktemp("cli") / "run"
    return out, specc_run("train", TWO_LAYER, "--epochs", 2, "--out", out)


# --- specc train ---------------------------------------------------------------------------------

def test_train_writes_a_run_folder(trained):
    out, r = trained
    assert r.code == 0, r.text
    assert epoch_lines(r.out) == [(1, 40), (2, 80)]  # one line per epoch, no progress bar: not a terminal
    assert "\r" not in r.out and "━" not in r.out
    assert f"run folder: {out}" in r.out and "SGD(lr=0.1), batch 100, float32" in r.out
    assert "2 epochs (40 iterations per epoch)" in r.out
    assert "done: 80 iterations" in r.out
    files = {p.name for p in out.iterdir()}
    assert {"model.net", "config.json", "metrics.jsonl", "weights.npz", "best.npz"} <= files
    assert not [n for n in files if n.startswith(".")]  # no lock, no temporary file left
    assert (out / "model.net").read_text() == TWO_LAYER.read_text()
    assert json.loads((out / "config.json").read_text())["settings"]["epochs"] == 2
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [(r["epoch"], r["iteration"]) for r in records] == [(1, 40), (2, 80)]
    for record in records:
        assert {"epoch", "iteration", "loss", "train_acc", "test_acc", "elapsed_s"} <= set(record)
        assert 0.5 < record["test_acc"] <= 1.0 and math.isfinite(record["loss"])


def test_learning_curve_or_why_not(trained):
    out, r = trained
    if plot.available():
        assert (out / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert "curve.png" in r.out
    else:
        assert not (out / "curve.png").exists()
        assert "no curve.png: matplotlib is not installed" in r.out


def test_a_folder_holding_a_run_is_refused(trained):
    out, _ = trained
    before = snapshot(out)
    r = specc_run("train", TWO_LAYER, "--epochs", 1, "--out", out)
    assert r.code == 2
    assert "holds an earlier run" in r.err and f"--resume {out}" in r.err
    assert snapshot(out) == before


def test_a_folder_locked_by_a_live_process_is_refused(tmp_path, lock_holder):
    out = tmp_path / "run"
    owner = lock_holder(out)
    owner.go()
    assert owner.outcome() == "won"
    r = specc_run("train", TWO_LAYER, "--iters", 2, "--out", out)
    assert r.code == 2
    assert f"in use by a training still running (process {owner.proc.pid})" in r.err
    assert sorted(p.name for p in out.iterdir()) == [".lock"] and (out / ".lock").read_text() == str(owner.proc.pid)
    owner.release()
    assert specc_run("train", TWO_LAYER, "--iters", 2, "--out", out).code == 0


def test_a_requeued_command_into_a_live_folder_says_it_is_in_use(tmp_path, lock_holder):
    """The folder holds weights and a live training: "in use", not "continue it with --resume"."""
    out = tmp_path / "run"
    assert specc_run("train", TWO_LAYER, "--iters", 5, "--out", out).code == 0
    owner = lock_holder(out)
    owner.go()
    assert owner.outcome() == "won"
    for extra in ([], ["--resume", out]):
        r = specc_run("train", TWO_LAYER, "--iters", 5, "--out", out, *extra)
        assert r.code == 2 and f"in use by a training still running (process {owner.proc.pid})" in r.err
        assert "earlier run" not in r.err
    owner.release()
    r = specc_run("train", TWO_LAYER, "--iters", 5, "--out", out)
    assert r.code == 2 and "holds an earlier run" in r.err and f"--resume {out}" in r.err


def test_a_stale_lock_naming_a_live_process_does_not_block(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / ".lock").write_text(str(os.getppid()))  # a pid now used by a live process that holds no lock
    r = specc_run("train", TWO_LAYER, "--iters", 2, "--out", out)
    assert r.code == 0, r.text


def test_a_dead_processes_lock_does_not_block_resume(tmp_path):
    out = tmp_path / "run"
    assert specc_run("train", TWO_LAYER, "--iters", 5, "--out", out).code == 0
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (out / ".lock").write_text(str(dead.pid))
    r = specc_run("train", TWO_LAYER, "--resume", out, "--iters", 45)
    assert r.code == 0, r.text
    assert "resuming at iteration 5 of 45" in r.out and epoch_lines(r.out) == [(1, 40), (2, 45)]
    assert not (out / ".lock").exists()


def test_resume_of_something_else_is_a_usage_error(tmp_path):
    r = specc_run("train", TWO_LAYER, "--resume", tmp_path)
    assert r.code == 2 and "not a run folder to resume" in r.err


def test_nan_in_the_first_epoch(tmp_path):
    out = tmp_path / "run"
    r = specc_run("train", TWO_LAYER, "--epochs", 2, "--lr", "1e30", "--out", out)
    assert r.code == 1
    assert "two_layer_net.net:2:28" in r.text and "produced NaN or infinity" in r.text
    assert "2 | Affine(784, 50) -> ReLU -> Affine(10) -> SoftmaxWithLoss" in r.text  # the layer's .net line
    assert "Traceback" not in r.text and "RuntimeWarning" not in r.text
    # regression: it used to claim that "the last good checkpoint stays in weights.npz", which did not exist
    assert "no checkpoint was written" in r.text and not (out / "weights.npz").exists()


def test_nan_keeps_the_last_good_checkpoint(tmp_path):
    rng = np.random.default_rng(0)
    x, t = rng.integers(0, 256, (20, 784), dtype=np.uint8), rng.integers(0, 10, 20)
    np.savez(tmp_path / "d.npz", x_train=x, t_train=t, x_test=x[:5], t_test=t[:5])
    out = tmp_path / "run"
    r = specc_run("train", TWO_LAYER, "--data", tmp_path / "d.npz", "--batch", 20, "--epochs", 3, "--lr", "1e30",
                  "--out", out)
    assert r.code == 1
    assert "2 | Affine(784, 50) -> ReLU -> Affine(10) -> SoftmaxWithLoss" in r.text
    assert f"the last good checkpoint stays in {out}/weights.npz (iteration 1)" in r.text
    saved = checkpoint.read(out / "weights.npz")
    assert checkpoint.meta(saved)["iteration"] == 1
    assert all(np.isfinite(v).all() for k, v in saved.items() if k.startswith("param/"))
    assert not (out / ".lock").exists()


def test_bad_flags_and_data(tmp_path):
    assert specc_run("train", TWO_LAYER, "--epochs", 0).code == 2
    assert specc_run("train", TWO_LAYER, "--epochs", 1, "--iters", 5).code == 2
    r = specc_run("train", TWO_LAYER, "--optimizer", "Adamm", "--out", tmp_path / "a")
    assert r.code == 2 and "did you mean 'Adam'" in r.err
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not data")
    r = specc_run("train", TWO_LAYER, "--data", bad, "--out", tmp_path / "b")
    assert r.code == 2 and str(bad) in r.err and "not an .npz file" in r.err and "Traceback" not in r.text


# --- specc eval and predict ------------------------------------------------------------------------

def test_eval_shows_accuracy_and_a_confusion_matrix(trained):
    out, _ = trained
    last = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    r = specc_run("eval", TWO_LAYER, "--weights", out / "weights.npz")
    assert r.code == 0, r.text
    assert f"accuracy {last['test_acc']:.4f}" in r.out and f"loss {last['test_loss']:.4f}" in r.out
    assert "on 1,000 test samples of mnist-5k" in r.out and "confusion matrix" in r.out
    rows = [line for line in r.out.splitlines() if re.match(r"^│ \d │", line)]
    assert len(rows) == 10
    counts = [[int(v) for v in row.strip("│").split("│")[1:11]] for row in rows]
    assert sum(map(sum, counts)) == 1000 and [sum(row) for row in counts] == [100] * 10
    assert sum(counts[k][k] for k in range(10)) == round(last["test_acc"] * 1000)
    r = specc_run("eval", TWO_LAYER, "--weights", out / "best.npz", "--split", "train")
    assert r.code == 0 and f"accuracy {last['train_acc']:.4f}" in r.out and "4,000 train samples" in r.out


def test_eval_refuses_weights_of_another_network(trained, tmp_path):
    out, _ = trained
    other = tmp_path / "other.net"
    other.write_text("input 784\nAffine(30) -> ReLU\n  -> Affine(10) -> SoftmaxWithLoss\n")
    r = specc_run("eval", other, "--weights", out / "weights.npz")
    assert r.code == 2
    assert "other.net:2:1" in r.err and "2 | Affine(30) -> ReLU" in r.err and "needs 784x30" in r.err
    assert "other.net:3:6" in r.err and "needs 30x10" in r.err and "3 errors" in r.err  # b2 fits


def test_predict_shows_probabilities(trained, tmp_path):
    out, _ = trained
    images = data.load(None).x_test[:5]
    np.save(tmp_path / "x.npy", images)
    r = specc_run("predict", TWO_LAYER, "--weights", out / "weights.npz", tmp_path / "x.npy", "--limit", 4)
    assert r.code == 0, r.text
    assert "x.npy: 5 images" in r.out and "probability" in r.out and "top 3" in r.out
    rows = [line for line in r.out.splitlines() if re.match(r"^│ \d │", line)]
    assert len(rows) == 4 and "1 more" in r.out
    net = api.load(TWO_LAYER)
    checkpoint.restore(net, out / "weights.npz")
    probs = net.probabilities(images / 255)
    for row, p in zip(rows, probs):
        cells = [c.strip() for c in row.strip("│").split("│")]
        assert int(cells[1]) == int(p.argmax()) and float(cells[2]) == pytest.approx(p.max(), abs=1e-4)
        assert len(cells[3].split("  ")) == 3


def test_predict_refuses_unreadable_images(trained, tmp_path):
    out, _ = trained
    (tmp_path / "x.npy").write_bytes(b"garbage")
    r = specc_run("predict", TWO_LAYER, "--weights", out / "weights.npz", tmp_path / "x.npy")
    assert r.code == 2 and "x.npy" in r.err and "is not a readable .npy array" in r.err and "Traceback" not in r.err


# --- Ctrl-C on a real process ----------------------------------------------------------------------

@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["Ctrl-C", "SIGTERM"])
def test_ctrl_c_saves_and_resume_completes(tmp_path, signum):
    """Ctrl-C, or SIGTERM (a batch system's time limit or preemption; Open MPI's mpirun turns Ctrl-C
    into one for its ranks), stops after the current step with the checkpoint saved."""
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "specc", "train", str(TWO_LAYER), "--epochs", "1000",
                             "--out", str(out)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    first_epoch = threading.Event()

    def read() -> None:
        for line in proc.stdout:
            lines.append(line)
            if EPOCH_LINE.match(line):
                first_epoch.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert first_epoch.wait(60), "".join(lines)
        proc.send_signal(signum)
        code = proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(10)
    text = "".join(lines) + proc.stderr.read()
    assert code == 1, text
    stopped = checkpoint.meta(checkpoint.read(out / "weights.npz"))["iteration"]
    assert 40 <= stopped < 40_000
    assert f"stopped after iteration {stopped:,}; checkpoint saved in {out}/weights.npz" in text
    assert f"resume with: specc train {TWO_LAYER} --resume {out}" in text
    assert "Traceback" not in text and not (out / ".lock").exists()

    epochs = stopped // 40 + 1
    r = specc_run("train", TWO_LAYER, "--resume", out, "--epochs", epochs)
    assert r.code == 0, r.text
    assert f"resuming at iteration {stopped:,} of {epochs * 40:,}" in r.out
    assert epoch_lines(r.out) == [(epochs, epochs * 40)]
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == list(range(1, epochs + 1))


def test_resume_refuses_flags_that_would_change_the_run(tmp_path):
    from specc.errors import UsageError
    (tmp_path / "config.json").write_text(json.dumps({"settings": {"epochs": 1, "optimizer_args": {"lr": 0.1}},
                                                        "data": {"origin": "mnist-5k"}}))
    with pytest.raises(UsageError) as info:
        api.training(ROOT / "models" / "two_layer_net.net", resume=tmp_path, lr=0.5)
    assert "--lr 0.5 differs from the run's lr 0.1" in info.value.diagnostics[0].message


def test_the_identical_command_requeued_with_resume_continues(tmp_path):
    """What a job scheduler does: the command that started the run, again, plus --resume."""
    out = tmp_path / "run"
    first = api.training(TWO_LAYER, out=out, iters=45, batch=50, lr=0.1, optimizer="sgd", seed=0, dtype="float32")
    try:
        list(first.run(stop=lambda: first.iteration >= 5))  # the job is stopped after 5 iterations
    finally:
        first.close()
    r = specc_run("train", TWO_LAYER, "--iters", 45, "--batch", 50, "--lr", 0.1, "--optimizer", "sgd",
                  "--seed", 0, "--dtype", "float32", "--out", out, "--resume", out)
    assert r.code == 0, r.text
    assert "resuming at iteration 5 of 45" in r.out and epoch_lines(r.out) == [(1, 45)]
    r = specc_run("train", TWO_LAYER, "--dtype", "float32", "--resume", out)  # a default, given alone
    assert r.code == 0, r.text


@pytest.mark.parametrize("flags, said", [
    (["--batch", 60], "--batch 60 differs from the run's batch 50"),
    (["--lr", 0.2, "--seed", 1], "--lr 0.2 differs from the run's lr 0.1, --seed 1 differs from the run's seed 0"),
    (["--optimizer", "ADAM"], "--optimizer Adam differs from the run's optimizer SGD"),
    (["--dtype", "float64"], "--dtype float64 differs from the run's dtype float32"),
])
def test_resume_names_the_setting_a_flag_would_change(tmp_path, flags, said):
    out = tmp_path / "run"
    assert specc_run("train", TWO_LAYER, "--iters", 5, "--batch", 50, "--out", out).code == 0
    before = snapshot(out)
    r = specc_run("train", TWO_LAYER, "--batch", 50, *flags, "--resume", out)
    assert r.code == 2 and said in r.err, r.err
    assert snapshot(out) == before


def test_a_plain_resume_after_an_extension_continues_the_extended_run(tmp_path):
    out = tmp_path / "run"
    assert specc_run("train", TWO_LAYER, "--iters", 5, "--out", out).code == 0
    assert specc_run("train", TWO_LAYER, "--iters", 45, "--resume", out).code == 0
    assert json.loads((out / "config.json").read_text())["iterations"] == 45
    r = specc_run("train", TWO_LAYER, "--resume", out)  # the requeued resume, without --iters
    assert r.code == 0 and "resuming at iteration 45 of 45" in r.out, r.text


def test_resume_refuses_another_out_folder(tmp_path):
    out = tmp_path / "run"
    assert specc_run("train", TWO_LAYER, "--iters", 5, "--out", out).code == 0
    r = specc_run("train", TWO_LAYER, "--resume", out, "--out", tmp_path / "other")
    assert r.code == 2 and "name two run folders" in r.err
    assert not (tmp_path / "other").exists()


def test_an_ir_json_trains_like_its_net_file(tmp_path):
    net_file = ROOT / "models" / "two_layer_net.net"
    ir = tmp_path / "two_layer_net.json"
    ir.write_text(json.dumps(specc.ir_document(specc.read(net_file))))
    assert specc_run("train", net_file, "--epochs", "1", "--out", tmp_path / "a").code == 0
    assert specc_run("train", ir, "--epochs", "1", "--out", tmp_path / "b").code == 0
    assert (tmp_path / "b" / "model.json").exists() and not (tmp_path / "b" / "model.net").exists()
    records = [[deterministic(json.loads(line))
                for line in (tmp_path / d / "metrics.jsonl").read_text().splitlines()]
               for d in ("a", "b")]
    assert records[0] == records[1]


def test_evaluation_and_prediction_are_in_the_python_api(tmp_path):
    # the eval and predict commands only render what specc.api returns
    spec = ROOT / "models" / "two_layer_net.net"
    assert specc_run("train", spec, "--epochs", "1", "--out", tmp_path / "run").code == 0
    weights = tmp_path / "run" / "weights.npz"
    net, dataset, result = api.evaluation(spec, weights)
    matrix = result.confusion(10)
    assert matrix.sum() == len(dataset.t_test) == len(result.labels)
    assert np.trace(matrix) == round(result.accuracy * len(result.labels))
    np.save(tmp_path / "x.npy", dataset.x_test[:4])
    probs = api.prediction(spec, weights, tmp_path / "x.npy").probabilities
    assert probs.shape == (4, 10) and np.allclose(probs.sum(axis=1), 1)
    assert np.array_equal(probs.argmax(axis=1), result.predicted[:4])


def test_an_exploding_loss_is_warned_about_once_and_the_columns_hold(tmp_path):
    r = specc_run("train", TWO_LAYER, "--lr", "1e6", "--epochs", 2, "--out", tmp_path / "run")
    assert r.code == 0
    warnings = [line for line in r.err.splitlines() if ": warning: " in line]
    assert warnings == [f"{TWO_LAYER}: warning: the training loss is exploding: 2.18e+11 at iteration 2, "
                        f"from 2.33 at the start [loss-exploding]"]
    assert "  help: lower the learning rate (now 1e+06), for example to 100000" in r.err.splitlines()
    lines = r.out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("epoch"))
    rows = lines[header + 1:header + 3]
    assert [row.removesuffix(" *") for row in rows] == [row[:len(lines[header])] for row in rows]
    from specc.cli.trainview import _COLUMNS
    ends = [sum(width + 1 for _, width in _COLUMNS[:k + 1]) - 1 for k in range(len(_COLUMNS))]
    for row in rows:  # eight cells, each ending where its column's name ends
        cells = row.removesuffix(" *").split()
        assert len(cells) == len(_COLUMNS), row
        assert [row.index(c, e - len(c)) + len(c) for c, e in zip(cells, ends)] == ends, row
    assert "4.08e+20" in rows[0]  # the first epoch's mean loss, in e-notation within its 8 columns


def test_a_run_that_converges_is_not_warned_about(trained):
    _, r = trained
    assert "warning" not in r.err


@pytest.mark.parametrize("value, spec, width, shown", [
    (0.35181, ".4f", 8, "0.3518"), (4.084970620287459e20, ".4f", 8, "4.08e+20"),
    (1784989.0, ".4f", 9, "1.785e+06"), (123456.78, ".2f", 8, "1.23e+05"), (12345678901, ",.0f", 10, "1.2346e+10"),
    (float("nan"), ".4f", 8, "nan"), (1234567, ",", 7, "1.2e+06"),
])
def test_a_cell_fits_its_column(value, spec, width, shown):
    from specc.cli.trainview import _cell
    assert _cell(value, spec, width) == shown


def test_train_prints_the_networks_warnings_before_running(tmp_path):
    spec = tmp_path / "frozen.net"
    spec.write_text("input 784\nAffine(10) -> BatchNorm(momentum=1) -> SoftmaxWithLoss\n", encoding="utf-8")
    r = specc_run("train", spec, "--iters", 5, "--out", tmp_path / "run")
    assert r.code == 0
    assert r.err.splitlines()[0] == (f"{spec}:2:25: warning: momentum=1 never updates the running statistics; "
                                     "inference will use mean 0 and variance 1 [frozen-statistics]")


def test_integers_a_json_ir_file_writes_as_floats_reach_config_json_as_integers(tmp_path):
    doc = {"version": 1, "input": {"shape": [784]},
           "layers": [{"type": "Affine", "args": {"in": None, "out": 10.0, "init": "auto"}},
                      {"type": "SoftmaxWithLoss", "args": {}}],
           "train": {"batch": 500.0, "iters": 2.0, "seed": 1.0}}
    spec = tmp_path / "n.json"
    spec.write_text(json.dumps(doc), encoding="utf-8")
    assert specc_run("train", spec, "--out", tmp_path / "run").code == 0
    settings = json.loads((tmp_path / "run" / "config.json").read_text())["settings"]
    assert [type(settings[k]) for k in ("batch", "iters", "seed")] == [int, int, int]
    assert "10.0" not in specc_run("compile", spec, "--emit", "python").out
