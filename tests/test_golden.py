"""Golden files: every `tests/golden/NAME.snap` runs the command on its `args:` line in
tests/golden and compares the exit code, stdout and stderr exactly.

A .snap file reads

    args: check NAME.net
    exit: 2
    --- stdout
    <exact stdout>
    --- stderr
    <exact stderr>

SPECC_UPDATE_GOLDEN=1 rewrites the .snap files from what specc prints now (keeping each `args:`
line), and creates snapshots for inputs that have none: `args: check NAME.net`, or by the name's
prefix `lint NAME.net` (lint_), `fmt --diff NAME.net` (fmt_), `check --annotate NAME.net`
(annotate_); read the diff before committing it.
"""
from __future__ import annotations

import os
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import new_console
from rich.console import Console

from specc import cli

GOLDEN = Path(__file__).resolve().parent / "golden"
UPDATE = os.environ.get("SPECC_UPDATE_GOLDEN") == "1"
INPUT_SUFFIXES = (".net", ".json")


@dataclass
class Snapshot:
    args: str
    exit: int
    stdout: str
    stderr: str

    @classmethod
    def parse(cls, text: str, where: Path) -> "Snapshot":
        head, sep, rest = text.partition("--- stdout\n")
        stdout, sep2, stderr = rest.partition("--- stderr\n")
        fields = dict(line.split(": ", 1) for line in head.splitlines() if line.strip())
        if not sep or not sep2 or set(fields) != {"args", "exit"}:
            raise ValueError(f"{where}: expected `args:`, `exit:`, `--- stdout` and `--- stderr`")
        return cls(fields["args"], int(fields["exit"]), stdout, stderr)

    def render(self) -> str:
        return f"args: {self.args}\nexit: {self.exit}\n--- stdout\n{self.stdout}--- stderr\n{self.stderr}"


def _console() -> Console:
    return new_console(100)


def _run(args: str) -> tuple[int, str, str]:
    out, err = _console(), _console()
    code = cli.run(shlex.split(args), out, err)
    return code, out.file.getvalue(), err.file.getvalue()


def _inputs() -> list[Path]:
    return sorted(p for p in GOLDEN.iterdir() if p.suffix in INPUT_SUFFIXES)


# the command a new input's snapshot runs, by the input's name (`check` for the others)
_COMMAND_BY_PREFIX = {"lint_": "lint", "fmt_": "fmt --diff", "annotate_": "check --annotate"}

if UPDATE:  # a new input gets a snapshot that checks it
    for _input in _inputs():
        if not _input.with_suffix(".snap").exists():
            _command = next((c for p, c in _COMMAND_BY_PREFIX.items() if _input.name.startswith(p)), "check")
            _input.with_suffix(".snap").write_text(f"args: {_command} {_input.name}\nexit: 0\n--- stdout\n--- stderr\n",
                                                    encoding="utf-8", newline="\n")

CASES = sorted(GOLDEN.glob("*.snap"))


@pytest.mark.parametrize("snap", CASES, ids=[p.stem for p in CASES])
def test_golden(snap: Path, monkeypatch):
    expected = Snapshot.parse(snap.read_text(encoding="utf-8"), snap)
    monkeypatch.chdir(GOLDEN)
    code, stdout, stderr = _run(expected.args)
    actual = Snapshot(expected.args, code, stdout, stderr)
    if UPDATE:
        snap.write_text(actual.render(), encoding="utf-8", newline="\n")
        return
    assert "Traceback" not in stderr
    assert (actual.exit, actual.stdout, actual.stderr) == (expected.exit, expected.stdout, expected.stderr), \
        f"{snap.name} differs; if the new output is right, rerun with SPECC_UPDATE_GOLDEN=1"


def test_every_golden_input_has_a_snapshot():
    named = {word for snap in CASES for word in shlex.split(Snapshot.parse(snap.read_text(encoding="utf-8"),
                                                                          snap).args)}
    orphans = [p.name for p in _inputs() if p.name not in named]
    assert orphans == [], "add a .snap for each (SPECC_UPDATE_GOLDEN=1 creates `args: check NAME`)"


def test_golden_cases_cover_the_models():
    # A copy, so that the snapshot does not change when a model's training settings do.
    for model in sorted((GOLDEN.parent.parent / "models").glob("*.net")):
        copy = GOLDEN / f"summary_{model.name}"
        assert copy.exists(), f"copy models/{model.name} to tests/golden/summary_{model.name} and add its snapshot"


def test_snapshot_format_round_trips():
    snap = Snapshot("check a.net", 2, "", "a.net:1:1: error: x\n--- not a marker\n")
    assert Snapshot.parse(snap.render(), Path("x")) == snap
