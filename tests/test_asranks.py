"""`specc train --as-ranks N`: threads of one process computing every step as N MPI ranks would."""
from __future__ import annotations

import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from helpers import ROOT
from test_mpi import _assert_same_run, _env, _train, needs_mpi

from specc import api
from specc.errors import UsageError
from specc.training.asranks import ThreadGroup
from specc.training.loop import Trainer


def _on_threads(size: int, work) -> list:
    """work(world) on each world of a ThreadGroup, each in a thread; their results in rank order."""
    worlds = ThreadGroup(size).worlds()
    results: list = [None] * size

    def run(w):
        results[w.rank] = work(w)

    threads = [threading.Thread(target=run, args=(w,)) for w in worlds]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert not any(t.is_alive() for t in threads)
    return results


def test_a_thread_sum_adds_the_ranks_in_rank_order():
    rng = np.random.default_rng(0)
    parts = rng.standard_normal((3, 1000)).astype(np.float32)

    def work(w):
        a = parts[w.rank].copy()
        w.sum(a)
        return a

    expected = (parts[0] + parts[1]) + parts[2]  # left to right, as written here
    for got in _on_threads(3, work):
        assert got.tobytes() == expected.tobytes()


def test_a_thread_gather_and_broadcast_give_every_rank_the_same_array():
    def work(w):
        flat = np.full(10, -1.0)
        lo, hi = w.bounds(10)
        flat[lo:hi] = np.arange(lo, hi)  # this rank's part only
        w.gather(flat)
        mine = {"a": np.full(4, float(w.rank)), "b": np.full(2, 10.0 + w.rank)}
        w.broadcast(mine)
        return flat, mine

    for flat, mine in _on_threads(3, work):
        np.testing.assert_array_equal(flat, np.arange(10.0))
        np.testing.assert_array_equal(mine["a"], 0.0)  # rank 0's
        np.testing.assert_array_equal(mine["b"], 10.0)


def test_a_failed_rank_ends_the_others_collectives():
    group = ThreadGroup(2)
    worlds = group.worlds()
    raised: list = []

    def waiting():
        try:
            worlds[1].sum(np.zeros(3))
        except BaseException as e:  # noqa: BLE001 -- the test looks at what it was
            raised.append(e)

    t = threading.Thread(target=waiting)
    t.start()
    time.sleep(0.05)
    group.fail(ValueError("rank 0 could not go on"))
    t.join(5)
    assert not t.is_alive() and isinstance(raised[0], ValueError)
    with pytest.raises(ValueError):
        worlds[0].sum(np.zeros(3))


def _run(tmp_path, name: str, ranks: int, model: str, iters: int, **flags) -> Trainer:
    trainer = api.training(ROOT / "models" / model, out=tmp_path / name, iters=iters, as_ranks=ranks, **flags)
    try:
        for _ in trainer.run():
            pass
    finally:
        trainer.close()
    return trainer


def _companions_gone() -> bool:
    deadline = time.monotonic() + 10
    while any(t.name.startswith("specc rank") for t in threading.enumerate()):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


@pytest.mark.parametrize("model, batch", [("two_layer_net.net", 100), ("multi_layer_net.net", 33)])
def test_as_two_ranks_trains_what_one_process_does_in_float64(tmp_path, model, batch):
    """In float64 the ranks' summation order moves nothing beyond rounding: as a 2-rank MPI run does
    (tests/test_mpi.py), the thread ranks agree with one process; batch 33 makes shares of 17 and 16."""
    _run(tmp_path, "one", 1, model, 30, batch=batch, dtype="float64")
    two = _run(tmp_path, "two", 2, model, 30, batch=batch, dtype="float64")
    assert two.world.size == 2 and two.world.comm is None
    _assert_same_run(tmp_path / "one", tmp_path / "two", 1e-10)
    assert _companions_gone()


def test_as_ranks_is_refused_for_batchnorm_batches_below_the_ranks_without_a_hang(tmp_path):
    with pytest.raises(UsageError) as e:
        api.training(ROOT / "models" / "multi_layer_net.net", out=tmp_path / "r", iters=3, batch=1, as_ranks=2)
    assert e.value.diagnostics[0].code == "batch-below-ranks"
    assert _companions_gone()
    assert not (tmp_path / "r" / ".lock").exists()


def test_as_ranks_is_refused_under_an_mpi_launch_and_for_zero_ranks(tmp_path):
    from specc.training.world import World

    with pytest.raises(UsageError) as e:
        api.training(ROOT / "models" / "two_layer_net.net", out=tmp_path / "r", as_ranks=2, world=World(0, 2))
    assert e.value.diagnostics[0].code == "as-ranks-under-mpi"
    with pytest.raises(UsageError) as e:
        api.training(ROOT / "models" / "two_layer_net.net", out=tmp_path / "r", as_ranks=0)
    assert e.value.diagnostics[0].code == "bad-ranks"


def test_a_trainer_closed_before_its_run_ends_its_thread_ranks(tmp_path):
    trainer = api.training(ROOT / "models" / "two_layer_net.net", out=tmp_path / "r", iters=5, as_ranks=3)
    trainer.close()
    assert _companions_gone()


def test_a_rank_that_fails_mid_run_fails_rank_0_with_its_error(tmp_path, monkeypatch):
    original = Trainer._sample

    def failing(self, index):
        if self.world.rank == 1 and self.iteration == 3:
            raise RuntimeError("rank 1 lost its data")
        return original(self, index)

    monkeypatch.setattr(Trainer, "_sample", failing)
    with pytest.raises(RuntimeError, match="rank 1 lost its data"):
        _run(tmp_path, "r", 2, "two_layer_net.net", 10)
    assert _companions_gone()


def test_a_stopped_thread_run_resumes_as_one_process(tmp_path):
    """Stopped after 8 of 20 steps (the stop request reduced over the ranks, so every rank stops after
    the same step), resumed as one process: the same run as 20 steps as 2 ranks, to rounding."""
    _run(tmp_path, "whole", 2, "multi_layer_net.net", 20, dtype="float64")
    trainer = api.training(ROOT / "models" / "multi_layer_net.net", out=tmp_path / "cut", iters=20, as_ranks=2,
                           dtype="float64")
    try:
        for _ in trainer.run(lambda: trainer.iteration >= 7):
            pass
    finally:
        trainer.close()
    assert trainer.stopped and trainer.iteration == 8  # (asked during step 8)
    resumed = api.training(ROOT / "models" / "multi_layer_net.net", resume=tmp_path / "cut")
    try:
        for _ in resumed.run():
            pass
    finally:
        resumed.close()
    _assert_same_run(tmp_path / "whole", tmp_path / "cut", 1e-10)


@needs_mpi
@pytest.mark.parametrize("model, flags", [("two_layer_net.net", ()), ("multi_layer_net.net", ("--batch", "33")),
                                          ("simple_conv_net.net", ("--batch", "20"))])
def test_as_two_ranks_is_a_two_rank_mpi_run_bit_for_bit_in_float32(tmp_path, model, flags):
    """The equality that no single summation order can give in float32 (rounding differences grow
    with every step): one process computing as 2 ranks equals `mpiexec -n 2` exactly."""
    iters = 10 if model == "simple_conv_net.net" else 30
    _train(tmp_path / "mpi", 2, *flags, model=model, iters=iters, dtype="float32")
    _train(tmp_path / "threads", 1, *flags, "--as-ranks", "2", model=model, iters=iters, dtype="float32")
    _assert_same_run(tmp_path / "mpi", tmp_path / "threads", 0.0)


def test_the_cli_says_the_run_is_computed_as_ranks(tmp_path):
    run = subprocess.run([sys.executable, "-m", "specc", "train", str(ROOT / "models" / "two_layer_net.net"),
                          "--iters", "5", "--out", str(tmp_path / "r"), "--as-ranks", "2"],
                         capture_output=True, text=True, timeout=120, env=_env(), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "as 2 MPI ranks would, in 2 threads of this process" in run.stdout
    assert run.stdout.count("done: 5 iterations") == 1

