"""Without the [onnx] extra, `specc export` and `specc import` say what to install (exit 2, no traceback)."""
from __future__ import annotations

import io
import sys

import pytest
from helpers import ROOT
from rich.console import Console

from specc import cli


@pytest.mark.parametrize("argv", [["export", ROOT / "models" / "two_layer_net.net", "-o", "m.onnx"],
                                  ["import", "m.onnx", "-o", "m.net"]], ids=["export", "import"])
def test_commands_without_onnx_say_what_to_install(monkeypatch, tmp_path, argv):
    monkeypatch.setitem(sys.modules, "onnx", None)  # `import onnx` now raises ImportError
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m.onnx").write_bytes(b"")
    out = Console(file=io.StringIO(), width=200, color_system=None, force_terminal=False)
    err = Console(file=io.StringIO(), width=200, color_system=None, force_terminal=False)
    code = cli.run([str(a) for a in argv], out, err)
    message = err.file.getvalue()
    assert code == 2
    assert f"`specc {argv[0]}` needs the onnx package" in message
    assert 'pip install "specc[onnx]"' in message and "Traceback" not in message
    assert not (tmp_path / "m.net").exists()
