"""Data-parallel training under MPI: 2 ranks train what one process does, to 1e-10 in float64; an MPI
launch without mpi4py is a clear error; networks the ranks cannot yet split are refused."""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
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


def _train(out: Path, ranks: int, *flags: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "specc", "train", str(ROOT / "models" / "two_layer_net.net"), "--iters", "50",
           "--dtype", "float64", "--out", str(out), *flags]
    if ranks > 1:
        assert MPIEXEC is not None
        cmd = [MPIEXEC, "-n", str(ranks), *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=_env(), cwd=out.parent)


def _metrics(folder: Path) -> list[dict]:
    lines = (folder / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    return [{k: v for k, v in json.loads(line).items() if k not in TIMINGS} for line in lines]


@needs_mpi
def test_two_ranks_train_what_one_process_does(tmp_path):
    one, two = _train(tmp_path / "R1", 1), _train(tmp_path / "R2", 2)
    assert one.returncode == 0, one.stderr
    assert two.returncode == 0, two.stdout + two.stderr
    assert "on 2 MPI ranks" in two.stdout
    assert two.stdout.count("done: 50 iterations") == 1  # rank 0 alone prints
    a, b = np.load(tmp_path / "R1" / "weights.npz"), np.load(tmp_path / "R2" / "weights.npz")
    params = [k for k in a.files if k.startswith("param/")]
    assert params == [k for k in b.files if k.startswith("param/")] and params
    for k in params:
        np.testing.assert_allclose(b[k], a[k], rtol=0, atol=1e-10, err_msg=k)
    m1, m2 = _metrics(tmp_path / "R1"), _metrics(tmp_path / "R2")
    assert len(m1) == len(m2) == 2
    for r1, r2 in zip(m1, m2):
        assert r1.keys() == r2.keys()
        for k in r1:
            assert r2[k] == pytest.approx(r1[k], rel=0, abs=1e-10), k


@needs_mpi
def test_an_uneven_last_batch_is_weighted_by_its_share(tmp_path):
    # batch 33 over 2 ranks: shares of 17 and 16 samples, and a short last batch in each epoch
    one, two = _train(tmp_path / "R1", 1, "--batch", "33"), _train(tmp_path / "R2", 2, "--batch", "33")
    assert one.returncode == 0 and two.returncode == 0, two.stderr
    a, b = np.load(tmp_path / "R1" / "weights.npz"), np.load(tmp_path / "R2" / "weights.npz")
    for k in (k for k in a.files if k.startswith("param/")):
        np.testing.assert_allclose(b[k], a[k], rtol=0, atol=1e-10, err_msg=k)


@needs_mpi
def test_batchnorm_and_dropout_are_refused_on_several_ranks(tmp_path):
    cmd = [MPIEXEC, "-n", "2", sys.executable, "-m", "specc", "train", str(ROOT / "models" / "mlp_6x100_dropout.net"),
           "--iters", "2", "--out", str(tmp_path / "R")]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=_env())
    assert run.returncode != 0
    assert "cannot train on 2 MPI ranks yet" in run.stderr


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
