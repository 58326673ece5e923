"""Data-parallel training under MPI: 2 ranks train what one process does (BatchNorm and Dropout
networks too), to 1e-10 in float64; resuming on another number of ranks continues the run; a killed
rank or Ctrl-C ends every rank with the checkpoint readable; an MPI launch without mpi4py is a clear
error."""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import ROOT

from specc.errors import UsageError
from specc.training import world as world_mod

MPIEXEC = shutil.which("mpiexec", path=str(Path(sys.executable).parent)) or shutil.which("mpiexec")
needs_mpi = pytest.mark.skipif(importlib.util.find_spec("mpi4py") is None or MPIEXEC is None,
                               reason='needs mpi4py and mpiexec: pip install "specc[mpi]"')
TIMINGS = ("elapsed_s", "eval_s", "samples_per_s")


def _env() -> dict[str, str]:
    # One BLAS thread per rank; no launcher variables of an outer launch leak into a child.
    env = {k: v for k, v in os.environ.items() if k not in world_mod.LAUNCHER_SIZES}
    return {**env, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _train(out: Path, ranks: int, *flags: str, model: str = "two_layer_net.net", iters: int | None = 50,
           dtype: str = "float64", env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    run = subprocess.run(_command(out, ranks, *flags, model=model, iters=iters, dtype=dtype), capture_output=True,
                         text=True, timeout=300, env={**_env(), **(env or {})}, cwd=out.parent)
    assert run.returncode == 0, run.stdout + run.stderr
    return run


def _command(out: Path, ranks: int, *flags: str, model: str = "two_layer_net.net", iters: int | None = 50,
             dtype: str = "float64") -> list[str]:
    cmd = [sys.executable, "-m", "specc", "train", str(ROOT / "models" / model), "--dtype", dtype, "--out", str(out),
           *(["--iters", str(iters)] if iters is not None else []), *flags]
    if ranks > 1:
        assert MPIEXEC is not None
        cmd = [MPIEXEC, "-n", str(ranks), *cmd]
    return cmd


def _metrics(folder: Path) -> list[dict]:
    lines = (folder / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    return [{k: v for k, v in json.loads(line).items() if k not in TIMINGS} for line in lines]


def _assert_same_run(a: Path, b: Path, atol: float, skip: tuple[str, ...] = ()) -> None:
    """Two run folders hold the same parameters, BatchNorm statistics and metrics, to atol."""
    wa, wb = np.load(a / "weights.npz"), np.load(b / "weights.npz")
    arrays = [k for k in wa.files if k.startswith(("param/", "state/"))]
    assert arrays == [k for k in wb.files if k.startswith(("param/", "state/"))] and arrays
    for k in arrays:
        if k.split("/", 1)[1] not in skip:
            np.testing.assert_allclose(wb[k], wa[k], rtol=0, atol=atol, err_msg=k)
    m1, m2 = _metrics(a), _metrics(b)
    assert len(m1) == len(m2) and m1
    for r1, r2 in zip(m1, m2):
        assert r1.keys() == r2.keys()
        for k in r1:
            assert r2[k] == pytest.approx(r1[k], rel=0, abs=atol), k


@needs_mpi
def test_two_ranks_train_what_one_process_does(tmp_path):
    _train(tmp_path / "R1", 1)
    two = _train(tmp_path / "R2", 2)
    assert "on 2 MPI ranks" in two.stdout
    assert two.stdout.count("done: 50 iterations") == 1  # rank 0 alone prints
    _assert_same_run(tmp_path / "R1", tmp_path / "R2", 1e-10)
    assert len(_metrics(tmp_path / "R1")) == 2


@needs_mpi
@pytest.mark.parametrize("model,flags", [("two_layer_net.net", ("--batch", "33")),
                                         ("simple_conv_net.net", ("--batch", "20", "--iters", "12")),
                                         ("multi_layer_net.net", ("--batch", "33", "--iters", "20"))])
def test_ranks_sharing_memory_train_what_ranks_exchanging_messages_do(tmp_path, model, flags):
    """On one machine the ranks share their gradients and weights in memory (training.nodeshare), each
    summing and updating its part; SPECC_MPI_SHARED=0 sends them as ranks on several machines must.
    The same arithmetic: bit for bit in float32, uneven shares (17 and 16 samples) and every network
    size (TwoLayerNet's update is sharded only in shared memory) included."""
    shared = _train(tmp_path / "shared", 2, *flags, model=model, dtype="float32")
    sent = _train(tmp_path / "sent", 2, *flags, model=model, dtype="float32", env={"SPECC_MPI_SHARED": "0"})
    assert "on one machine, sharing gradients and weights in memory" in shared.stdout
    assert "exchanging gradients and weights as messages" in sent.stdout
    _assert_same_run(tmp_path / "sent", tmp_path / "shared", 0)


@needs_mpi
def test_an_uneven_last_batch_is_weighted_by_its_share(tmp_path):
    # batch 33 over 2 ranks: shares of 17 and 16 samples, and a short last batch in each epoch
    _train(tmp_path / "R1", 1, "--batch", "33")
    _train(tmp_path / "R2", 2, "--batch", "33")
    _assert_same_run(tmp_path / "R1", tmp_path / "R2", 1e-10)


@needs_mpi
@pytest.mark.parametrize("batch", ["100", "33"])
def test_batchnorm_and_dropout_on_two_ranks_train_what_one_process_does(tmp_path, batch):
    """The book's MultiLayerNetExtend (Affine -> BatchNorm -> ReLU -> Dropout): the statistics are the
    whole batch's, reduced over the ranks, and every rank's masks are its rows of the whole batch's;
    batch 33 makes shares of 17 and 16 (each rank's backward scaled by its share)."""
    flags = ("--batch", batch)
    _train(tmp_path / "R1", 1, *flags, model="multi_layer_net.net", iters=30)
    _train(tmp_path / "R2", 2, *flags, model="multi_layer_net.net", iters=30)
    _assert_same_run(tmp_path / "R1", tmp_path / "R2", 1e-10)


@needs_mpi
def test_simple_conv_net_on_two_ranks_trains_what_one_process_does(tmp_path):
    flags = ("--batch", "20")  # (a small batch keeps the test quick)
    _train(tmp_path / "R1", 1, *flags, model="simple_conv_net.net", iters=10)
    _train(tmp_path / "R2", 2, *flags, model="simple_conv_net.net", iters=10)
    _assert_same_run(tmp_path / "R1", tmp_path / "R2", 1e-10)


# Biases right before a BatchNorm get zero gradient in exact arithmetic (the BatchNorm subtracts them
# again; lint: bias-before-batchnorm): in float32 they move by rounding noise alone, which Adam scales
# up to steps of the learning rate, so two runs that round differently keep different values there
# (and in the running means, which carry them). They change no output; every other array must agree.
_CANCELLED = ("b1", "b2", "b3", "running_mean1", "running_mean2", "running_mean3")


@needs_mpi
@pytest.mark.parametrize("model", ["two_layer_net.net", "multi_layer_net.net"])
def test_two_ranks_in_float32_agree_with_one_process_to_1e5(tmp_path, model):
    _train(tmp_path / "R1", 1, model=model, iters=30, dtype="float32")
    _train(tmp_path / "R2", 2, model=model, iters=30, dtype="float32")
    _assert_same_run(tmp_path / "R1", tmp_path / "R2", 1e-5, _CANCELLED if model == "multi_layer_net.net" else ())


_RANKS_AGREE = """
import sys
import numpy as np
from mpi4py import MPI
from specc import api
from specc.training.world import detect
world = detect()
trainer = api.training(sys.argv[1], out=sys.argv[2], iters=20, dtype="float64", world=world)
for _ in trainer.run():
    pass
trainer.close()
net = trainer.net
mine = np.concatenate([v.ravel() for v in [*net.state.values(), *net.params.values()]] + [
    np.array([net.rng.random()])])
every = MPI.COMM_WORLD.gather(mine, root=0)
if world.root:
    assert all(np.array_equal(every[0], other) for other in every[1:]), "the ranks disagree"
    print("every rank holds the same statistics, parameters and random stream")
"""


@needs_mpi
def test_every_rank_ends_with_the_same_running_statistics(tmp_path):
    run = subprocess.run([MPIEXEC, "-n", "2", sys.executable, "-c", _RANKS_AGREE,
                          str(ROOT / "models" / "multi_layer_net.net"), str(tmp_path / "R")],
                         capture_output=True, text=True, timeout=300, env=_env())
    assert run.returncode == 0, run.stdout + run.stderr
    assert "every rank holds the same statistics" in run.stdout


@needs_mpi
def test_a_batch_with_fewer_samples_than_ranks_is_refused_for_batchnorm(tmp_path):
    run = subprocess.run(_command(tmp_path / "R", 2, "--batch", "1", model="multi_layer_net.net", iters=2),
                         capture_output=True, text=True, timeout=120, env=_env())
    assert run.returncode == 2, run.stdout + run.stderr
    assert "needs at least 2 samples in every batch, one per rank; this run has batches of 1" in run.stderr
    assert "use --batch 2 or more" in run.stderr


@needs_mpi
@pytest.mark.parametrize("first, then", [(2, 1), (1, 2)])
def test_resume_on_another_number_of_ranks_continues_as_one_process(tmp_path, first, then):
    """A run stopped after 30 iterations on `first` ranks and resumed on `then` ends where an
    uninterrupted one-process run of 60 does: the order of the data and the Dropout stream continue."""
    model = "multi_layer_net.net"
    _train(tmp_path / "U", 1, model=model, iters=60)
    _train(tmp_path / "R", first, model=model, iters=30)
    resumed = _train(tmp_path / "R", then, "--resume", str(tmp_path / "R"), model=model, iters=60)
    assert "resuming at iteration 30 of 60" in resumed.stdout
    wu, wr = np.load(tmp_path / "U" / "weights.npz"), np.load(tmp_path / "R" / "weights.npz")
    for k in (k for k in wu.files if k.startswith(("param/", "state/"))):
        np.testing.assert_allclose(wr[k], wu[k], rtol=0, atol=1e-10, err_msg=k)
    assert _metrics(tmp_path / "R")[-1] == pytest.approx(_metrics(tmp_path / "U")[-1], rel=0, abs=1e-10)


def _rank_pids(out: Path) -> dict[int, int]:
    """rank -> pid of the `specc train --out out` processes an mpiexec started (Linux: /proc)."""
    found = {}
    for proc in Path("/proc").iterdir():
        try:
            if not proc.name.isdigit() or str(out) not in (proc / "cmdline").read_bytes().decode(errors="replace"):
                continue
            env = dict(v.split("=", 1) for v in (proc / "environ").read_bytes().decode(errors="replace").split("\0")
                       if "=" in v)
        except OSError:
            continue  # gone, or not ours
        if "PMI_RANK" in env:
            found[int(env["PMI_RANK"])] = int(proc.name)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


_KILL_FLAGS = ("--epochs", "30")  # 1,200 iterations: seconds, while the first checkpoint comes after 40


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    """The run the killed ones are resumed to the end of, trained without a stop on 2 ranks."""
    out = tmp_path_factory.mktemp("mpi") / "U"
    _train(out, 2, *_KILL_FLAGS, iters=None)
    return out


@needs_mpi
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds the ranks' pids in /proc")
@pytest.mark.parametrize("signal_to", ["kill -9 rank 1", "kill -9 rank 0", "Ctrl-C mpiexec"])
def test_a_killed_rank_or_ctrl_c_ends_every_rank_and_resume_completes_the_run(tmp_path, signal_to, uninterrupted):
    """mpiexec (MPICH's hydra) ends every rank within 10 s when one dies (kill -9) or it is interrupted
    (Ctrl-C: the ranks stop after the same step and rank 0 saves); the checkpoint is readable, and
    --resume ends the run with the metrics of an uninterrupted one."""
    from specc.training import checkpoint

    flags = _KILL_FLAGS
    out = tmp_path / "K"
    proc = subprocess.Popen(_command(out, 2, *flags, iters=None), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=_env(), start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not (out / "weights.npz").exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        pids = _rank_pids(out)
        assert proc.poll() is None and sorted(pids) == [0, 1], "the run ended before it could be stopped"
        if signal_to == "Ctrl-C mpiexec":
            os.kill(proc.pid, signal.SIGINT)
        else:
            os.kill(pids[int(signal_to[-1])], signal.SIGKILL)
        killed = time.monotonic()
        output, _ = proc.communicate(timeout=10)
        took = time.monotonic() - killed
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert took < 10, f"mpiexec took {took:.1f} s to end"
    assert proc.returncode != 0
    time.sleep(0.2)
    assert not [pid for pid in pids.values() if _alive(pid)], "a rank outlived mpiexec"
    if signal_to == "Ctrl-C mpiexec":
        assert "stopped after iteration" in output, output
    stopped_at = checkpoint.meta(dict(np.load(out / "weights.npz")))["iteration"]
    assert 0 < stopped_at < 1200
    resumed = _train(out, 2, "--resume", str(out), *flags, iters=None)
    assert f"resuming at iteration {stopped_at:,} of 1,200" in resumed.stdout
    assert _metrics(out)[-1] == _metrics(uninterrupted)[-1]
    wk, wu = np.load(out / "weights.npz"), np.load(uninterrupted / "weights.npz")
    for k in (k for k in wu.files if k.startswith("param/")):
        np.testing.assert_array_equal(wk[k], wu[k], err_msg=k)


@needs_mpi
def test_a_checkpoint_rank_0_cannot_write_ends_every_rank(tmp_path):
    """A failure of rank 0 alone (here best.npz is a folder it cannot replace) is reported once, and
    the other ranks, which would wait for rank 0 in their next Allreduce forever, are ended too."""
    out = tmp_path / "R"
    (out / "best.npz").mkdir(parents=True)
    (out / "best.npz" / "in the way").touch()
    run = subprocess.run(_command(out, 2, iters=400), capture_output=True, text=True, timeout=60, env=_env())
    assert run.returncode == 1, run.stdout + run.stderr
    assert run.stderr.count("cannot write the checkpoint") == 1, run.stderr


def test_a_launch_without_mpi4py_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "mpi4py", None)  # `import mpi4py` raises ImportError
    with pytest.raises(UsageError) as e:
        world_mod.detect({"PMI_SIZE": "2"})
    text = str(e.value.diagnostics[0].message) + str(e.value.diagnostics[0].hint)
    assert "mpi4py is not installed" in text and 'pip install "specc[mpi]"' in text


def test_the_cli_under_a_launch_without_mpi4py_exits_with_the_error(tmp_path):
    # a child whose mpi4py import is blocked, started as if by `mpiexec -n 2`
    code = ("import sys; sys.modules['mpi4py'] = None; from specc.cli import main; "
            f"sys.exit(main(['train', {str(ROOT / 'models' / 'two_layer_net.net')!r}, '--iters', '2', "
            f"'--out', {str(tmp_path / 'R')!r}]))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**_env(), "PMI_SIZE": "2", "PMI_RANK": "0"})
    assert run.returncode == 2
    assert 'pip install "specc[mpi]"' in run.stderr
    assert not (tmp_path / "R").exists()  # nothing written


def test_alone_without_a_launcher():
    assert world_mod.detect({}) is world_mod.ALONE
    assert world_mod.launched_size({"OMPI_COMM_WORLD_SIZE": "4"}) == 4
    index = np.arange(7)
    parts = [world_mod.World(r, 2).share(index) for r in range(2)]
    assert [p.tolist() for p in parts] == [[0, 1, 2, 3], [4, 5, 6]]


def test_bounds_cut_as_array_split():
    for n in (0, 1, 2, 7, 33, 100):
        for size in (1, 2, 3, 4):
            parts = np.array_split(np.arange(n), size)
            for rank in range(size):
                start, stop = world_mod.World(rank, size).bounds(n)
                assert np.arange(n)[start:stop].tolist() == parts[rank].tolist()


class _Threads:
    """Ranks as threads of this process, for world_mod.Shares: sum() is an allreduce through a barrier,
    adding the ranks' arrays in rank order (so every thread gets the same bits)."""

    def __init__(self, size: int):
        self.size = size
        self.barrier = threading.Barrier(size)
        self.slots: list = [None] * size

    def rank(self, r: int):
        group = self

        class Rank:
            def bounds(self, n: int) -> tuple[int, int]:
                return world_mod.World(r, group.size).bounds(n)

            def sum(self, a: np.ndarray) -> None:
                group.slots[r] = a.copy()
                group.barrier.wait()
                total = group.slots[0].copy()
                for other in group.slots[1:]:
                    total += other
                group.barrier.wait()
                a[...] = total

        return Rank()


@pytest.mark.parametrize("fuse", [True, False], ids=["fused", "reference"])
@pytest.mark.parametrize("batch", [100, 33])
def test_shares_make_batchnorm_and_dropout_ranks_compute_one_process_gradient(fuse, batch):
    """Without MPI: 2 ranks as threads, each with its share of one batch and world_mod.Shares, its
    backward scaled by its share of the batch (as the trainer calls it), give summed the one-process
    gradient, BatchNorm statistics and Dropout masks; both the generated code and the reference layers."""
    import specc

    def network():
        return specc.load(ROOT / "models" / "multi_layer_net.net", dtype="float64", fuse=fuse, seed=3)

    rng = np.random.default_rng(0)
    x, t = rng.random((batch, 784)), rng.integers(0, 10, batch)
    one = network()
    one.backward(x, t)
    threads, nets, grads = _Threads(2), [network(), network()], [None, None]

    def rank(r: int) -> None:
        net, shares = nets[r], world_mod.Shares(threads.rank(r))
        net.batch = shares
        shares.split(batch)
        net.backward(x[shares.start:shares.stop], t[shares.start:shares.stop], (shares.stop - shares.start) / batch)
        grads[r] = {k: g.copy() for k, g in net.grads.items()}

    workers = [threading.Thread(target=rank, args=(r,)) for r in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=60)
    for k, g in one.grads.items():
        np.testing.assert_allclose(grads[0][k] + grads[1][k], g, rtol=0, atol=1e-12, err_msg=k)
    for k, v in one.state.items():  # the running statistics, equal on every rank
        np.testing.assert_allclose(nets[0].state[k], v, rtol=0, atol=1e-14, err_msg=k)
        np.testing.assert_array_equal(nets[1].state[k], nets[0].state[k], err_msg=k)
    assert nets[0].rng.random() == nets[1].rng.random() == one.rng.random()  # the streams stay together


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a pseudo-terminal")
@pytest.mark.parametrize("launched", [False, True])
def test_an_mpi_rank_writes_as_to_a_log_even_on_a_terminal(launched):
    """Open MPI gives its ranks a terminal of their own even when mpirun's output goes to a file: a rank
    writes no colour codes and no live progress bar there (regression: the log filled with escapes).
    `specc check` starts no MPI; the launcher's variable alone decides the console."""
    import pty

    leader, follower = pty.openpty()
    env = {**_env(), **({"PMI_SIZE": "2"} if launched else {})}
    env.pop("NO_COLOR", None)
    env["TERM"] = "xterm-256color"
    spec = ROOT / "tests" / "golden" / "conv_on_vectors.net"  # (an error: colour on a terminal)
    code = subprocess.call([sys.executable, "-m", "specc", "check", str(spec)], stdout=follower, stderr=follower,
                           env=env, timeout=120)
    os.close(follower)
    out = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal's other end is closed: all read
            break
        if not chunk:
            break
        out += chunk
    os.close(leader)
    assert code == 2, out
    assert (b"\x1b[" in out) is not launched, out
