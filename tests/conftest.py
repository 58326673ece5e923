"""Shared fixtures: where the repository's models live, a recording console, the command line run
in-process (see helpers.py), and processes that hold a run folder's lock."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ROOT, new_console, run_cli


@pytest.fixture
def models_dir() -> Path:
    return ROOT / "models"


@pytest.fixture
def console():
    """A console recording what it prints (console.file.getvalue())."""
    return new_console()


@pytest.fixture
def specc_cli():
    """run_cli: `specc ARGV...` in-process, giving (code, out, err)."""
    return run_cli


# A process that takes a run folder's lock when told "go", says whether it won, and holds the lock
# until its stdin closes: a second training, as real as the kernel sees it.
_HOLDER = """
import sys
from specc.errors import UsageError
from specc.training.runfolder import RunLock
lock = RunLock(sys.argv[1])
print("ready", flush=True)
sys.stdin.readline()
try:
    lock.acquire()
except UsageError as e:
    print("lost", e.diagnostics[0].message, flush=True)
else:
    print("won", flush=True)
sys.stdin.read()
lock.release()
"""


class LockHolder:
    """A subprocess that takes a run folder's lock (see _HOLDER)."""

    def __init__(self, folder: Path):
        # cwd=ROOT: the subprocess imports this checkout's specc
        self.proc = subprocess.Popen([sys.executable, "-c", _HOLDER, str(folder)], cwd=ROOT, text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert self.proc.stdout is not None and self.proc.stdin is not None
        self.stdin, self.stdout = self.proc.stdin, self.proc.stdout
        assert self.stdout.readline() == "ready\n"

    def go(self) -> None:
        self.stdin.write("go\n")
        self.stdin.flush()

    def outcome(self) -> str:
        """'won', or 'lost' and the message that refused it."""
        return self.stdout.readline().strip()

    def release(self) -> None:
        self.stdin.close()
        assert self.proc.wait(30) == 0


@pytest.fixture
def lock_holder():
    """Start LockHolders (lock_holder(folder)); any left running are killed after the test."""
    started: list[LockHolder] = []

    def start(folder: Path) -> LockHolder:
        started.append(LockHolder(folder))
        return started[-1]

    yield start
    for h in started:
        if h.proc.poll() is None:
            h.proc.kill()
        h.proc.wait()
