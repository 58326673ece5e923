"""specc runs one BLAS thread unless told otherwise (--threads, or the BLAS's own variables)."""
from __future__ import annotations

import numpy as np  # noqa: F401  (the BLAS must be loaded for threadpoolctl to see it)
import pytest
from helpers import ROOT, new_console
from threadpoolctl import threadpool_info

from specc import threads
from specc.cli import run
from specc.cli.commands import COMMANDS


def _blas_threads() -> set[int]:
    return {i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}


def test_the_choice_follows_the_flag_then_the_environment_then_one():
    assert threads.chosen(3, {}) == 3
    assert threads.chosen(3, {"OPENBLAS_NUM_THREADS": "2"}) == 3
    assert threads.chosen(None, {"OMP_NUM_THREADS": "2"}) is None  # the BLAS read it when it loaded
    assert threads.chosen(None, {"PATH": "/bin"}) == 1
    assert threads.chosen(None, {"OPENBLAS_NUM_THREADS": ""}) == 1


def test_a_command_runs_on_the_threads_chosen_and_gives_them_back(monkeypatch):
    if not _blas_threads():
        pytest.skip("no BLAS threadpoolctl can control")
    for var in threads.ENVIRONMENT:
        monkeypatch.delenv(var, raising=False)
    before = _blas_threads()
    seen = []
    monkeypatch.setitem(COMMANDS, "check", lambda args, out, err: seen.append(_blas_threads()) or 0)
    out, err = new_console(), new_console()
    assert run(["check", str(ROOT / "models" / "two_layer_net.net")], out, err) == 0
    assert seen == [{1}]
    assert _blas_threads() == before
