"""Reading spec files safely: size, folders, binary data and encodings are refused with a FileError."""
from __future__ import annotations

from pathlib import Path

from specc.errors import Diagnostic, FileError
from specc.source import Source, Span

MAX_SOURCE_BYTES = 16 * 1024 * 1024


def read_source(path: str | Path) -> Source:
    """Read a spec file as UTF-8 text, or raise FileError saying why it cannot be."""
    name = str(path)
    p = Path(path)
    if not p.exists():
        raise FileError([Diagnostic(f"no such file: '{name}'", code="no-file",
                                    hint="check the path; spec files usually end in .net or .json")],
                        name=name)
    if p.is_dir():
        raise FileError([Diagnostic(f"'{name}' is a folder, not a spec file", code="no-file")], name=name)
    try:
        size = p.stat().st_size
        if size > MAX_SOURCE_BYTES:
            raise FileError([Diagnostic(
                f"'{name}' is {size:,} bytes; spec files are limited to {MAX_SOURCE_BYTES:,}",
                code="file-too-large")], name=name)
        data = p.read_bytes()
    except OSError as e:
        raise FileError([Diagnostic(f"cannot read '{name}': {e.strerror or e}", code="unreadable")],
                        name=name) from None
    return decode_source(name, data)


def decode_source(name: str, data: bytes) -> Source:
    """Decode bytes as UTF-8 (a BOM is allowed); binary data is refused with its position."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    nul = data.find(b"\x00")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        if nul != -1 and nul < e.start:
            return _binary(name, data, nul, "it contains a NUL byte")
        return _binary(name, data, e.start, f"byte 0x{data[e.start]:02x} is not valid UTF-8")
    if nul != -1:
        return _binary(name, data, nul, "it contains a NUL byte")
    return Source(name, text)


def _binary(name: str, data: bytes, offset: int, why: str) -> Source:
    good = data[:offset].decode("utf-8", errors="replace")
    line = good.count("\n") + 1
    col = len(good) - (good.rfind("\n") + 1) + 1
    raise FileError([Diagnostic(
        f"'{name}' is not a text file: {why}",
        span=Span(line, col, line, col + 1), code="not-text",
        hint="spec files are UTF-8 text; is this a weights or data file?")], name=name)
