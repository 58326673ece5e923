"""Training (specc.train through specc.api.training): settings resolution, the events of a run, the
run folder, resume == an uninterrupted run bit for bit, determinism, run-folder locks, divergence."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import ROOT

from specc import api
from specc.errors import DataError, RunError, SpeccError, UsageError
from specc.training import checkpoint, data, plot, runfolder
from specc.training.events import Evaluated, Started, Step, Stopped, deterministic
from specc.training.runfolder import RunLock
from specc.training.settings import Settings, resolve

TINY = "input 784\nAffine(10) -> SoftmaxWithLoss\n"
# Dropout draws from the network's random stream, BatchNorm keeps running statistics, Adam keeps
# two moments per parameter: everything a resumed run must restore.
STATEFUL = """# resume must restore all of this
input 784
Affine(32, init=he) -> BatchNorm -> ReLU -> Dropout(0.2)
  -> Affine(10) -> SoftmaxWithLoss

train {
  optimizer = Adam(lr=0.002)
  batch = 200
  seed = 3
}
"""

PER_EPOCH = 4000 // 200  # the sample has 4,000 training digits
TOTAL = 50  # two and a half epochs


def train_section(text: str):
    return api.check_text(text).network.train


def spec_file(tmp_path: Path, text: str = STATEFUL, name: str = "model.net") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def run_all(trainer, stop=lambda: False) -> list:
    try:
        return list(trainer.run(stop))
    finally:
        trainer.close()


def metrics(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]


def arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files if k != "meta"}


def assert_same_arrays(a: dict, b: dict) -> None:
    assert sorted(a) == sorted(b)
    for k in a:
        assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape, k
        assert a[k].tobytes() == b[k].tobytes(), k  # bit for bit


# --- settings ------------------------------------------------------------------------------------

def test_defaults():
    s = resolve(None, {})
    assert s == Settings("SGD", {"lr": 0.01}, 100, 10, None, 0.0, 0, "float32", "constant", {}, None)
    assert s.lr == 0.01 and s.describe() == "SGD(lr=0.01)"


WRITTEN = TINY + """train {
  optimizer = Momentum(lr=0.05, momentum=0.5)
  batch = 32
  epochs = 3
  weight_decay = 1e-3
  seed = 7
  dtype = "float64"
  schedule = step(every=2)
  data = "mnist-5k"
}
"""


def test_train_section_over_defaults():
    s = resolve(train_section(WRITTEN), {})
    assert (s.optimizer, dict(s.optimizer_args)) == ("Momentum", {"lr": 0.05, "momentum": 0.5})
    assert (s.batch, s.epochs, s.iters, s.weight_decay, s.seed, s.dtype) == (32, 3, None, 1e-3, 7, "float64")
    assert (s.schedule, dict(s.schedule_args), s.data) == ("step", {"every": 2, "gamma": 0.1}, "mnist-5k")


def test_flags_over_the_train_section():
    flags = {"lr": 0.2, "batch": 64, "seed": 9, "dtype": "float32", "data": "other", "epochs": None, "iters": None,
             "optimizer": None}
    s = resolve(train_section(WRITTEN), flags)
    assert (s.optimizer, dict(s.optimizer_args)) == ("Momentum", {"lr": 0.2, "momentum": 0.5})
    assert (s.batch, s.seed, s.dtype, s.data, s.epochs) == (64, 9, "float32", "other", 3)
    assert s.weight_decay == 1e-3  # no flag for it: the file's value stays


def test_the_same_optimizer_keeps_its_arguments():
    s = resolve(train_section(WRITTEN), {"optimizer": "momentum"})  # names are matched in any case
    assert (s.optimizer, dict(s.optimizer_args)) == ("Momentum", {"lr": 0.05, "momentum": 0.5})


def test_another_optimizer_drops_the_files_arguments():
    s = resolve(train_section(WRITTEN), {"optimizer": "adam"})
    assert (s.optimizer, dict(s.optimizer_args)) == ("Adam", {"lr": 0.001, "beta1": 0.9, "beta2": 0.999})
    s = resolve(train_section(WRITTEN), {"optimizer": "AdaGrad", "lr": 0.3})
    assert (s.optimizer, dict(s.optimizer_args)) == ("AdaGrad", {"lr": 0.3})


def test_unknown_optimizer_flag():
    with pytest.raises(UsageError) as info:
        resolve(None, {"optimizer": "Adamm"})
    assert "unknown optimizer 'Adamm'" in str(info.value) and "Adam" in info.value.diagnostics[0].hint


def test_lr_shorthand_and_flag():
    written = train_section(TINY + "train {\n  optimizer = RMSprop(decay_rate=0.9)\n  lr = 0.003\n}\n")
    assert dict(resolve(written, {}).optimizer_args) == {"lr": 0.003, "decay_rate": 0.9}
    assert resolve(written, {"lr": 0.5}).lr == 0.5


def test_epochs_and_iters():
    epochs = train_section(TINY + "train {\n  epochs = 4\n}\n")
    iters = train_section(TINY + "train {\n  iters = 300\n}\n")
    assert (resolve(epochs, {}).epochs, resolve(epochs, {}).iters) == (4, None)
    assert (resolve(iters, {}).epochs, resolve(iters, {}).iters) == (None, 300)
    assert (resolve(epochs, {"iters": 7}).epochs, resolve(epochs, {"iters": 7}).iters) == (None, 7)
    assert (resolve(iters, {"epochs": 2}).epochs, resolve(iters, {"epochs": 2}).iters) == (2, None)


def test_epochs_or_iters_count_iterations(tmp_path):
    spec = spec_file(tmp_path, TINY)
    t = api.training(spec, out=tmp_path / "a", epochs=2, batch=500)
    t.close()
    assert (t.per_epoch, t.total) == (8, 16)
    t = api.training(spec, out=tmp_path / "b", iters=5, batch=3000)
    t.close()
    assert (t.per_epoch, t.total) == (2, 5)  # the last batch of an epoch may be short


# --- a run ---------------------------------------------------------------------------------------

def test_events_and_run_folder(tmp_path):
    spec = spec_file(tmp_path, TINY)
    out = tmp_path / "run"
    trainer = api.training(spec, out=out, iters=25, batch=200)
    assert (out / ".lock").read_text() == str(os.getpid())
    events = run_all(trainer)
    assert not (out / ".lock").exists()
    assert events[0] == Started(25, PER_EPOCH, 0)
    steps = [e for e in events if isinstance(e, Step)]
    assert [s.iteration for s in steps] == list(range(1, 26)) and all(np.isfinite(s.loss) for s in steps)
    evaluated = [e for e in events if isinstance(e, Evaluated)]
    assert [e.record["iteration"] for e in evaluated] == [20, 25] and [e.record["epoch"] for e in evaluated] == [1, 2]
    assert not any(isinstance(e, Stopped) for e in events)
    # the trainer itself writes curve.png (where matplotlib is installed), not the command line's view
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["best.npz", "config.json", "metrics.jsonl", "model.net", "weights.npz"]
        + (["curve.png"] if plot.available() else []))
    assert (out / "model.net").read_text() == TINY
    config = json.loads((out / "config.json").read_text())
    assert config["settings"]["batch"] == 200 and config["iterations"] == 25
    assert config["data"] == {"name": "mnist-5k", "origin": str(data.SAMPLE_DIR), "train": 4000, "test": 1000}
    records = metrics(out)
    assert records == [e.record for e in evaluated]
    first = records[0]
    assert set(first) >= {"epoch", "iteration", "loss", "train_loss", "train_acc", "test_loss", "test_acc", "lr",
                          "elapsed_s"}
    assert first["loss"] == pytest.approx(np.mean([s.loss for s in steps[:20]]))
    assert 0.0 <= first["test_acc"] <= 1.0
    meta = checkpoint.meta(checkpoint.read(out / "weights.npz"))
    assert meta["iteration"] == 25
    best = checkpoint.meta(checkpoint.read(out / "best.npz"))
    assert best["test_acc"] == max(r["test_acc"] for r in records)


def test_a_folder_holding_a_run_is_not_overwritten(tmp_path):
    spec = spec_file(tmp_path, TINY)
    out = tmp_path / "run"
    run_all(api.training(spec, out=out, iters=3))
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(UsageError, match="holds an earlier run"):
        api.training(spec, out=out, iters=3)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_resume_needs_a_run_folder(tmp_path):
    spec = spec_file(tmp_path, TINY)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="not a run folder"):
        api.training(spec, resume=tmp_path / "empty")


# --- resume == uninterrupted ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The reference runs, trained straight through, per optimizer."""
    root = tmp_path_factory.mktemp("straight")
    spec = spec_file(root)
    out = {}
    for optimizer in ("Adam", "Momentum"):
        folder = root / optimizer
        trainer = api.training(spec, out=folder, iters=TOTAL, optimizer=optimizer)
        run_all(trainer)
        out[optimizer] = (folder, {k: v.copy() for k, v in trainer.net.params.items()})
    return out


@pytest.mark.parametrize("optimizer", ["Adam", "Momentum"])
@pytest.mark.parametrize("stops", [[7], [PER_EPOCH], [2 * PER_EPOCH + 3], [1, PER_EPOCH, PER_EPOCH + 9]],
                         ids=["mid-epoch", "epoch-end", "last-epoch", "three-times"])
def test_resume_equals_an_uninterrupted_run(tmp_path, uninterrupted, optimizer, stops):
    straight, straight_params = uninterrupted[optimizer]
    spec = spec_file(tmp_path)
    folder = tmp_path / "run"
    trainer = api.training(spec, out=folder, iters=TOTAL, optimizer=optimizer)
    for k in stops:
        events = run_all(trainer, stop=lambda: trainer.iteration >= k)
        assert events[-1] == Stopped(k)
        assert checkpoint.meta(checkpoint.read(folder / "weights.npz"))["iteration"] == k
        assert not (folder / ".lock").exists()
        trainer = api.training(spec, resume=folder)  # a fresh network, optimizer and data set
        assert trainer.iteration == k and trainer.s.optimizer == optimizer
    events = run_all(trainer)
    assert events[0] == Started(TOTAL, PER_EPOCH, stops[-1])
    for k, v in straight_params.items():
        assert trainer.net.params[k].tobytes() == v.tobytes(), k
    assert_same_arrays(arrays(folder / "weights.npz"), arrays(straight / "weights.npz"))
    assert_same_arrays(arrays(folder / "best.npz"), arrays(straight / "best.npz"))
    assert [deterministic(r) for r in metrics(folder)] == [deterministic(r) for r in metrics(straight)]
    assert [r["iteration"] for r in metrics(folder)] == [20, 40, 50]


def test_resume_drops_records_written_after_the_checkpoint(tmp_path):
    """A kill between the metrics line and the next checkpoint, or in the middle of a line."""
    spec = spec_file(tmp_path, TINY)
    folder = tmp_path / "run"
    trainer = api.training(spec, out=folder, iters=30, batch=200)
    run_all(trainer, stop=lambda: trainer.iteration >= 22)
    with open(folder / "metrics.jsonl", "a") as f:
        f.write(json.dumps({"epoch": 2, "iteration": 40, "loss": 1.0}) + "\n" + '{"epoch": 3, "iter')
    run_all(api.training(spec, resume=folder))
    assert [r["iteration"] for r in metrics(folder)] == [20, 30]


def test_resume_removes_checkpoints_a_kill_cut_short(tmp_path):
    """kill -9 during a checkpoint leaves its temporary file beside the whole previous checkpoint."""
    spec = spec_file(tmp_path, TINY)
    folder = tmp_path / "run"
    run_all(api.training(spec, out=folder, iters=10, batch=500))
    cut = folder / ".weights.npz.k1ll3d.tmp"
    cut.write_bytes(b"PK\x03\x04 half a checkpoint")
    run_all(api.training(spec, resume=folder, iters=20))
    assert not cut.exists()
    assert [r["iteration"] for r in metrics(folder)][-1] == 20


def test_resume_can_extend_a_finished_run(tmp_path):
    spec = spec_file(tmp_path, TINY)
    folder = tmp_path / "run"
    run_all(api.training(spec, out=folder, epochs=1, batch=500))
    events = run_all(api.training(spec, resume=folder, epochs=3))
    assert events[0] == Started(24, 8, 8)
    assert [r["epoch"] for r in metrics(folder)] == [1, 2, 3]


def test_resume_refuses_a_checkpoint_without_progress(tmp_path):
    spec = spec_file(tmp_path, TINY)
    folder = tmp_path / "run"
    trainer = api.training(spec, out=folder, iters=3)
    run_all(trainer)
    checkpoint.save(folder / "weights.npz", trainer.net)  # weights only, as best.npz
    with pytest.raises(DataError, match="no training progress"):
        api.training(spec, resume=folder)
    assert not (folder / ".lock").exists()


def test_resume_refuses_a_changed_spec(tmp_path):
    spec = spec_file(tmp_path, TINY)
    folder = tmp_path / "run"
    trainer = api.training(spec, out=folder, iters=5)
    run_all(trainer, stop=lambda: trainer.iteration >= 2)
    changed = spec_file(tmp_path, "input 784\nAffine(20) -> ReLU -> Affine(10) -> SoftmaxWithLoss\n", "other.net")
    with pytest.raises(DataError) as info:
        api.training(changed, resume=folder)
    assert {d.span.line for d in info.value.diagnostics if d.span} == {2}


# --- determinism ---------------------------------------------------------------------------------

def test_same_seed_same_run_and_another_seed_differs(tmp_path, uninterrupted):
    straight, params = uninterrupted["Adam"]
    spec = spec_file(tmp_path)
    again = api.training(spec, out=tmp_path / "again", iters=TOTAL, optimizer="Adam")
    run_all(again)
    assert [deterministic(r) for r in metrics(tmp_path / "again")] == [deterministic(r) for r in metrics(straight)]
    assert_same_arrays(arrays(tmp_path / "again" / "weights.npz"), arrays(straight / "weights.npz"))
    assert all(again.net.params[k].tobytes() == v.tobytes() for k, v in params.items())

    other = api.training(spec, out=tmp_path / "other", iters=TOTAL, optimizer="Adam", seed=4)
    run_all(other)
    assert not np.array_equal(other.net.params["W1"], params["W1"])
    assert [r["loss"] for r in metrics(tmp_path / "other")] != [r["loss"] for r in metrics(straight)]


def test_one_seed_gives_the_same_dropout_masks():
    """The seed sets the Dropout stream as well as the initial weights."""
    a = api.compile(STATEFUL, seed=5)
    b = api.compile(STATEFUL, seed=5)
    x = np.random.default_rng(0).random((8, 784)).astype(np.float32)
    t = np.arange(8) % 10
    ga, gb = a.gradient(x, t), b.gradient(x, t)
    assert all(ga[k].tobytes() == gb[k].tobytes() for k in ga)


# --- locks ---------------------------------------------------------------------------------------

def test_a_live_lock_refuses_a_second_training(tmp_path):
    spec = spec_file(tmp_path, TINY)
    folder = tmp_path / "run"
    first = api.training(spec, out=folder, iters=3)
    try:
        other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        try:
            lock = folder / ".lock"
            lock.write_text(str(other.pid))  # as if another process held it
            with pytest.raises(UsageError, match=f"in use by a training still running \\(process {other.pid}\\)"):
                RunLock(folder).acquire()
            with pytest.raises(UsageError, match="in use"):
                api.training(spec, out=tmp_path / "run", iters=3)
            assert lock.read_text() == str(other.pid)
        finally:
            other.kill()
            other.wait()
    finally:
        first.close()


def test_a_dead_processes_lock_is_taken_over(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / ".lock").write_text(str(dead.pid))
    lock = RunLock(folder)
    lock.acquire()
    assert (folder / ".lock").read_text() == str(os.getpid())
    lock.release()
    assert not (folder / ".lock").exists()
    (folder / ".lock").write_text("not a pid")  # unreadable: no owner to wait for
    lock.acquire()
    lock.release()


def test_a_stale_lock_naming_a_live_unrelated_process_does_not_block(tmp_path):
    """Pids are reused: the pid in a lock left behind may belong to another live process by now."""
    unrelated = subprocess.Popen(["sleep", "60"])
    try:
        for pid in (unrelated.pid, os.getppid()):
            folder = tmp_path / f"run-{pid}"
            folder.mkdir()
            (folder / ".lock").write_text(str(pid))
            lock = RunLock(folder)
            lock.acquire()
            assert (folder / ".lock").read_text() == str(os.getpid())
            lock.release()
        run_all(api.training(spec_file(tmp_path, TINY), out=folder, iters=2))  # training into it works too
    finally:
        unrelated.kill()
        unrelated.wait()


def test_a_killed_owner_not_yet_reaped_does_not_block(tmp_path, lock_holder):
    """A zombie (dead, not yet waited for) still has its pid, but the kernel dropped its lock."""
    folder = tmp_path / "run"
    owner = lock_holder(folder)
    owner.go()
    assert owner.outcome() == "won"
    with pytest.raises(UsageError, match=f"in use by a training still running \\(process {owner.proc.pid}\\)"):
        RunLock(folder).acquire()
    owner.proc.kill()
    os.waitid(os.P_PID, owner.proc.pid, os.WEXITED | os.WNOWAIT)  # dead, but left unreaped
    assert Path(f"/proc/{owner.proc.pid}/stat").read_text().split(") ")[1][0] == "Z"
    lock = RunLock(folder)
    lock.acquire()
    lock.release()


# Rounds of the race, run in one helper process that has imported specc once: each round it forks two
# processes, wakes both with one write, and reports who took the lock. Forking makes a round cost
# milliseconds instead of two interpreter starts, so the race can be run many times.
_RACE = r"""
import json, os, sys
from specc.errors import UsageError
from specc.training.runfolder import RunLock

def contend(folder, go, report, hold):
    os.read(go, 1)
    lock = RunLock(folder)
    try:
        lock.acquire()
        outcome = "won"
    except UsageError as e:
        outcome = "lost: " + e.diagnostics[0].message
    os.write(report, (json.dumps(outcome) + "\n").encode())
    os.read(hold, 1)  # hold the lock until both have tried
    lock.release()
    os._exit(0)

rounds, root, existing = int(sys.argv[1]), sys.argv[2], sys.argv[3]
for n in range(rounds):
    folder = os.path.join(root, f"run-{n}")
    if existing != "none":
        os.mkdir(folder)
    if existing == "empty lock file":
        open(os.path.join(folder, ".lock"), "w").close()
    go, report, hold = os.pipe(), os.pipe(), os.pipe()
    pids = []
    for _ in range(2):
        pid = os.fork()
        if pid == 0:
            contend(folder, go[0], report[1], hold[0])
        pids.append(pid)
    os.write(go[1], b"..")
    with os.fdopen(report[0]) as lines:
        outcomes = [json.loads(lines.readline()) for _ in range(2)]
    os.write(hold[1], b"..")
    codes = [os.waitpid(pid, 0)[1] for pid in pids]
    for fd in (*go, report[1], *hold):
        os.close(fd)
    print(json.dumps({"outcomes": sorted(outcomes), "codes": codes,
                      "lock_left": os.path.exists(os.path.join(folder, ".lock"))}), flush=True)
"""


@pytest.mark.parametrize("existing", ["none", "folder", "empty lock file"])
def test_two_trainings_started_together_exactly_one_wins(tmp_path, existing):
    """Two processes take one folder's lock at the same moment, 40 times: never both, never neither.
    (An empty lock file is one created but not yet written: the pid lock took it for stale.)"""
    rounds = 40
    done = subprocess.run([sys.executable, "-c", _RACE, str(rounds), str(tmp_path), existing], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    results = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(results) == rounds
    for n, r in enumerate(results):
        (lost, won) = r["outcomes"]
        assert won == "won" and lost.startswith(f"lost: run folder {tmp_path}/run-{n} is in use by a training"), r
        assert r["codes"] == [0, 0] and not r["lock_left"], r


def test_a_folder_in_use_says_so_and_not_that_it_holds_an_earlier_run(tmp_path):
    """One accurate message: "continue it with --resume" would fail too while the folder is in use."""
    spec = spec_file(tmp_path, TINY)
    folder = tmp_path / "run"
    first = api.training(spec, out=folder, iters=25, batch=200)
    try:
        list(first.run())  # weights.npz written, the lock still held
        assert (folder / "weights.npz").exists()
        for flags in ({"out": folder}, {"resume": folder}):
            with pytest.raises(UsageError) as info:
                api.training(spec, iters=30, **flags)
            message = info.value.diagnostics[0].message
            assert f"in use by a training still running (process {os.getpid()})" in message
            assert "earlier run" not in message
    finally:
        first.close()
    with pytest.raises(UsageError, match="holds an earlier run"):  # idle now: the earlier run is what stands
        api.training(spec, out=folder, iters=3)
    run_all(api.training(spec, resume=folder, iters=30))


def test_without_fcntl_the_lock_file_itself_is_the_lock(tmp_path, monkeypatch):
    """Windows is not a target, but importing and locking work there: an exclusively created file."""
    monkeypatch.setattr(runfolder, "fcntl", None)
    folder = tmp_path / "run"
    first = RunLock(folder)
    first.acquire()
    with pytest.raises(UsageError) as info:
        RunLock(folder).acquire()
    assert f"delete {folder / '.lock'}" in (info.value.diagnostics[0].hint or "")
    first.release()
    assert not folder.exists()  # the lock made the folder, and nothing else was put there
    again = RunLock(folder)
    again.acquire()
    again.release()


def test_a_failed_start_leaves_no_folder_behind(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(SpeccError):
        api.training(spec_file(tmp_path, TINY), out=out, data=str(tmp_path / "missing.npz"))
    assert not out.exists()


# --- divergence ----------------------------------------------------------------------------------

def one_step_per_epoch(tmp_path: Path, scale: float) -> Path:
    rng = np.random.default_rng(0)
    x = (rng.random((20, 784)) * scale).astype(np.float32)
    t = rng.integers(0, 10, 20)
    path = tmp_path / "d.npz"
    np.savez(path, x_train=x, t_train=t, x_test=x[:5], t_test=t[:5])
    return path


def test_nan_names_the_layer_and_keeps_the_last_checkpoint(tmp_path):
    spec = spec_file(tmp_path, "input 784\nAffine(50) -> ReLU\n  -> Affine(10) -> SoftmaxWithLoss\n")
    trainer = api.training(spec, out=tmp_path / "run", data=str(one_step_per_epoch(tmp_path, 1.0)), batch=20,
                           epochs=3, lr=1e30)
    events = []
    with pytest.raises(RunError) as info:
        for e in trainer.run():
            events.append(e)
    trainer.close()
    d = info.value.diagnostics[0]
    assert "NaN or infinity" in d.message and d.span.line == 3 and info.value.exit_code == 1
    assert trainer.saved == 1 and [e.record["iteration"] for e in events if isinstance(e, Evaluated)] == [1]
    saved = checkpoint.read(tmp_path / "run" / "weights.npz")
    assert checkpoint.meta(saved)["iteration"] == 1
    assert all(np.isfinite(v).all() for k, v in saved.items() if k.startswith("param/"))


def test_infinite_weights_never_overwrite_a_checkpoint(tmp_path):
    """Regression: a step that overflowed the weights while the loss was still finite had its
    weights saved as weights.npz and best.npz, 'the last good checkpoint'."""
    spec = spec_file(tmp_path, TINY)
    # (SGD's rate is folded into the loss's gradient, as lr / N: 1e300 / 20 is infinite in float32, so
    # the first update makes the weights infinite while the loss it was taken at is finite)
    trainer = api.training(spec, out=tmp_path / "run", data=str(one_step_per_epoch(tmp_path, 1.0)), batch=20,
                           epochs=3, lr=1e300)
    with pytest.raises(RunError) as info:
        run_all(trainer)
    d = info.value.diagnostics[0]
    assert "W1 holds NaN or infinity after iteration 1" in d.message and d.span.line == 2
    assert trainer.saved is None
    assert not (tmp_path / "run" / "weights.npz").exists() and not (tmp_path / "run" / "best.npz").exists()


def test_overflow_is_reported_not_warned(tmp_path, recwarn):
    spec = spec_file(tmp_path, "Affine(784, 50) -> ReLU -> Affine(50, 10) -> SoftmaxWithLoss\n")
    trainer = api.training(spec, out=tmp_path / "run", iters=5, lr=1e30)
    with pytest.raises(RunError):
        run_all(trainer)
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


def test_an_exploding_loss_is_one_warning_event_and_the_run_goes_on(tmp_path):
    from specc.training.events import Warned
    trainer = api.training(spec_file(tmp_path, TINY), out=tmp_path / "run", lr=1e6, iters=30)
    events = run_all(trainer)
    warned = [(i, e.diagnostic) for i, e in enumerate(events) if isinstance(e, Warned)]
    assert len(warned) == 1
    i, d = warned[0]
    assert isinstance(events[i - 1], Step) and d.severity == "warning" and d.code == "loss-exploding"
    # the loss at the start is about ln(10); the warning comes at the first step past 1,000 times that
    first = next(e.loss for e in events if isinstance(e, Step))
    before = [e.loss for e in events[:i] if isinstance(e, Step)]
    assert before[-1] > 1e3 * first and all(loss <= 1e3 * first for loss in before[:-1])
    assert sum(isinstance(e, Step) for e in events) == 30


def test_a_learning_rate_that_works_gives_no_warning(tmp_path):
    from specc.training.events import Warned
    events = run_all(api.training(spec_file(tmp_path, TINY), out=tmp_path / "run", iters=30))
    assert not any(isinstance(e, Warned) for e in events)
