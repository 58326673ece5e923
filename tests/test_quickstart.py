"""The README's Quick start and the packaging it relies on: two commands that work on a fresh machine
with only Python (each makes and uses a venv, as an externally managed system Python requires), the
ones CI runs, and a default install that draws the learning curve."""
from __future__ import annotations

import subprocess

import pytest
from helpers import ROOT


def quick_start() -> list[str]:
    """The commands of the first code block of the README's Quick start section."""
    section = (ROOT / "README.md").read_text(encoding="utf-8").split("\n## Quick start\n", 1)[1].split("\n## ", 1)[0]
    block = section.split("```", 2)[1]
    return [line for line in block.splitlines()[1:] if line.strip()]  # [0] is the fence's language


def test_the_quick_start_is_two_commands_that_make_and_use_a_venv():
    commands = quick_start()
    assert len(commands) == 2
    for command in commands:
        first, *rest = (part.strip() for part in command.split("&&"))
        assert first == "python3 -m venv .venv"
        # never the system's pip or python: PEP 668 refuses installing into them
        assert rest and all(part.startswith(".venv/bin/") for part in rest), command
    assert commands[0].endswith(".venv/bin/specc train models/two_layer_net.net")
    assert '".[test]"' in commands[1] and commands[1].endswith(".venv/bin/python -m pytest")


def test_ci_runs_the_quick_start_as_written():
    printed = subprocess.run(["bash", str(ROOT / ".ci" / "quickstart"), str(ROOT / "README.md")],
                             capture_output=True, text=True, check=True).stdout
    assert printed.splitlines() == quick_start()
    assert "mapfile -t commands < <(.ci/quickstart README.md)" in (ROOT / ".ci" / "run").read_text()


def test_the_default_install_draws_the_learning_curve():
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert any(d.replace(" ", "").startswith("matplotlib>=") for d in project["dependencies"])
    assert project["optional-dependencies"]["plot"] == []  # kept, so that old install commands still work
