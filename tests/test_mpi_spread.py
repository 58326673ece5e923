"""`specc sweep` and `specc compare` under `mpiexec -n 2`: whole trials spread over the ranks, each
trained alone on its rank, gathered by rank 0 into what one process writes (same trials, same
numbers); a resumed sweep skips the trials finished before, whichever rank ran them; an error on a
rank ends the launch with one report."""
from __future__ import annotations

import json
import pickle
import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ROOT
from test_mpi import MPIEXEC, TIMINGS, _env, needs_mpi

from specc import api
from specc.errors import Diagnostic, UsageError
from specc.training import spread, sweep
from specc.training.world import ALONE

SIX = ROOT / "models" / "mlp_6x100.net"
TWO = ROOT / "models" / "two_layer_net.net"
# three trials: rank 0 takes two, rank 1 one (an uneven share); tiny, on the embedded sample
SWEEP = ["--lr", "0.02,0.05,0.1", "--epochs", "2", "--train-size", "300", "--eval-sample", "100"]


def _specc(ranks: int, *args: object, cwd: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "specc", *(str(a) for a in args)]
    if ranks > 1:
        assert MPIEXEC is not None
        cmd = [MPIEXEC, "-n", str(ranks), *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=_env(), cwd=cwd)


def _trials(folder: Path) -> dict[int, dict]:
    """trials.jsonl by trial index, without the timings (which differ run to run)."""
    out = {}
    for line in (folder / sweep.RESULTS).read_text(encoding="utf-8").splitlines():
        d = json.loads(line)
        d["records"] = [{k: v for k, v in r.items() if k not in TIMINGS} for r in d["records"]]
        out[d["index"]] = d
    return out


def _table(stdout: str) -> list[list[str]]:
    """The sweep table's rows without the columns of times."""
    return [[c.strip() for c in line.split("│")[1:-1]] for line in stdout.splitlines() if line.startswith("│")]


@needs_mpi
def test_a_sweep_on_two_ranks_is_the_sweep_of_one_process(tmp_path):
    one = _specc(1, "sweep", SIX, *SWEEP, "--out", tmp_path / "S1", cwd=tmp_path)
    two = _specc(2, "sweep", SIX, *SWEEP, "--out", tmp_path / "S2", cwd=tmp_path)
    assert one.returncode == 0, one.stderr
    assert two.returncode == 0, two.stdout + two.stderr
    assert "3 trials on 2 MPI ranks, each rank training the next as it finishes one" in two.stdout
    assert "(rank 0)" in two.stdout and "(rank 1)" in two.stdout
    assert two.stdout.count("trials finished; the best") == 1  # rank 0 alone prints the table
    # the same trials with the same numbers, ranked the same; each trial a run folder of its own
    assert _trials(tmp_path / "S2") == _trials(tmp_path / "S1")
    assert _table(two.stdout) == _table(one.stdout) and len(_table(two.stdout)) == 3
    assert (tmp_path / "S2" / "best.train").read_text() == (tmp_path / "S1" / "best.train").read_text()
    for n in (1, 2, 3):
        assert (tmp_path / "S2" / f"trial-{n:03d}" / "weights.npz").is_file()
    plan1, plan2 = (json.loads((tmp_path / s / sweep.PLAN).read_text()) for s in ("S1", "S2"))
    assert plan2["trials"] == plan1["trials"]
    # a requeued resume in one process finds every trial done, whichever rank ran it
    again = _specc(1, "sweep", "--resume", tmp_path / "S2", cwd=tmp_path)
    assert again.returncode == 0 and "3 trials were finished before" in again.stdout


@needs_mpi
def test_a_sweep_stopped_in_one_process_resumes_on_two_ranks(tmp_path):
    whole = _specc(1, "sweep", SIX, *SWEEP, "--out", tmp_path / "whole", cwd=tmp_path)
    assert whole.returncode == 0, whole.stderr
    folder = tmp_path / "part"
    finished: list[int] = []
    flags = dict(lr="0.02,0.05,0.1", epochs=2, train_size=300, eval_sample=100)
    for event in api.sweeping(SIX, out=folder, stop=lambda: len(finished) >= 1, **flags):
        if isinstance(event, sweep.TrialFinished):
            finished.append(event.result.trial.index)
    assert finished == [0]
    stamp = (folder / "trial-001" / "weights.npz").stat().st_mtime_ns
    resumed = _specc(2, "sweep", "--resume", folder, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "2 trials on 2 MPI ranks" in resumed.stdout
    assert "1 trials were finished before" in resumed.stdout
    assert (folder / "trial-001" / "weights.npz").stat().st_mtime_ns == stamp  # not run again
    resumed_trials, whole_trials = _trials(folder), _trials(tmp_path / "whole")
    assert sorted(resumed_trials) == [0, 1, 2]
    # (trial 1 ran in this process, whose BLAS threads may round float32 sums otherwise: its score only)
    assert resumed_trials.pop(0)["score"] == whole_trials.pop(0)["score"]
    assert resumed_trials == whole_trials


@needs_mpi
def test_a_comparison_on_two_ranks_is_the_comparison_of_one_process(tmp_path):
    args = ["compare", TWO, "--optimizer", "SGD,Momentum,Adam", "--iters", "30", "--eval-sample", "200"]
    one = _specc(1, *args, "--out", tmp_path / "C1", cwd=tmp_path)
    two = _specc(2, *args, "--out", tmp_path / "C2", cwd=tmp_path)
    assert one.returncode == 0, one.stderr
    assert two.returncode == 0, two.stdout + two.stderr
    assert "3 variants on 2 MPI ranks" in two.stdout and "(rank 1)" in two.stdout

    def doc(name):
        d = json.loads((tmp_path / name / "compare.json").read_text())
        for v in d["variants"]:
            v["final"] = {k: x for k, x in v["final"].items() if k not in TIMINGS}
        return d
    assert doc("C2") == doc("C1")  # the variants in their order, with every step's loss
    assert [v["name"] for v in doc("C2")["variants"]] == ["SGD", "Momentum", "Adam"]
    assert (tmp_path / "C2" / "02-Momentum" / "weights.npz").is_file()


@needs_mpi
def test_an_error_on_the_ranks_is_reported_once_and_ends_the_launch(tmp_path):
    first = _specc(1, "sweep", TWO, "--lr", "0.1", "--iters", "2", "--out", tmp_path / "S", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    again = _specc(2, "sweep", TWO, "--lr", "0.1", "--iters", "2", "--out", tmp_path / "S", cwd=tmp_path)
    assert again.returncode == 2
    assert again.stderr.count("holds an earlier sweep") == 1
    assert not (tmp_path / "S" / "trial-002").exists()


@needs_mpi
def test_a_trial_failing_on_another_rank_is_reported_by_rank_0_and_ends_the_launch(tmp_path):
    # the second trial (rank 1's) overflows at once; one process would stop the sweep with the same error
    r = _specc(2, "sweep", TWO, "--lr", "0.01,1e38", "--iters", "300", "--out", tmp_path / "S", cwd=tmp_path)
    assert r.returncode == 1, r.stdout + r.stderr
    assert r.stderr.count("produced NaN or infinity") == 1 and "two_layer_net.net:2:1" in r.stderr
    assert "Traceback" not in r.stderr


@needs_mpi
def test_a_rank_that_finishes_early_takes_the_next_run(tmp_path):
    """Runs are handed out as ranks finish them, not dealt in turns beforehand: a long variant (3,000
    steps) on rank 0 leaves both short ones (diverging at their first step) to rank 1, where turns
    would have given rank 0 the third after its long one."""
    r = _specc(2, "compare", TWO, "--lr", "0.1,1e38,1e38", "--iters", "3000", "--eval-sample", "100",
               "--out", tmp_path / "C", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    ran = dict(re.findall(r"\[(\d)/3\] .* \(rank (\d)\)", r.stdout))
    assert ran == {"1": "0", "2": "1", "3": "1"}, r.stdout


def test_alone_the_engine_runs_every_item_in_order_and_stops_between_them():
    seen: list[int] = []

    def one(item, stop):
        seen.append(item)
        yield item

    assert list(spread.run([1, 2, 3], one, lambda: len(seen) >= 2, (int,), ALONE)) == [1, 2]
    assert spread.on_root(ALONE, lambda: 5) == 5


def test_an_error_travels_between_ranks_as_plain_data():
    e = UsageError([Diagnostic("bad", None, "bad-range", hint="h")], None, "x.net")
    back = spread._unpack(pickle.loads(pickle.dumps(spread._pack(e))))
    assert isinstance(back, UsageError) and back.diagnostics == e.diagnostics and back.name == "x.net"
    with pytest.raises(UsageError, match="bad"):
        spread.on_root(ALONE, lambda: (_ for _ in ()).throw(e))
