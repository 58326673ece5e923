"""Interop with other frameworks: ONNX export and import (the `[onnx]` extra), and what to install without it."""
from __future__ import annotations

import importlib
import os
import tempfile
from pathlib import Path
from types import ModuleType

from specc.errors import Diagnostic, FileError, UsageError

OPSET = 17  # the ONNX operator set specc writes (onnxruntime 1.14 and later run it)
IR_VERSION = 8  # the ONNX file format version that goes with opset 17


def require(module: str, command: str) -> ModuleType:
    """Import an optional dependency, or say which extra brings it (a UsageError, never a traceback)."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise UsageError([Diagnostic(
            f"`specc {command}` needs the {module} package, which is not installed", None, "missing-extra",
            hint='install the ONNX extra: pip install "specc[onnx]" (it brings onnx and onnxruntime)')]) from None


def write_atomically(path: Path, data: bytes) -> None:
    """Write a file through a temporary one beside it, renamed over it: never a half-written file."""
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError as e:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        raise FileError([Diagnostic(f"cannot write {path}: {e.strerror or e}", None, "write-failed")],
                        name=str(path)) from None


__all__ = ["IR_VERSION", "OPSET", "require", "write_atomically"]
