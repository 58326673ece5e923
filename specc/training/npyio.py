"""Arrays from files whose headers may lie: .npz members are known by their headers before any data
is read, and every body is read in a stream capped at what its header declares (plus one byte)."""
from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
from numpy.lib import format as npy_format

from specc.errors import DataError, Diagnostic
from specc.text import shape_text

_CHUNK = 1 << 20  # bytes inflated at a time: memory grows with the data that really arrives


@dataclass(frozen=True)
class Header:
    """What an .npy header declares: enough to refuse an array before reading its data."""

    shape: tuple[int, ...]
    dtype: np.dtype
    fortran: bool

    @property
    def nbytes(self) -> int:
        count = 1
        for n in self.shape:  # Python integers: a lying header cannot overflow the product
            count *= n
        return count * self.dtype.itemsize

    def describe(self) -> str:
        return f"{shape_text(self.shape) or 'a scalar'} {self.dtype} values ({self.nbytes:,} bytes)"


def refused(path: str | Path, message: str, code: str = "too-large", hint: str | None = None) -> DataError:
    return DataError([Diagnostic(message, None, code, hint=hint)], name=str(path))


def read_body(f: IO[bytes], nbytes: int) -> tuple[np.ndarray, bool]:
    """The next `nbytes` bytes of a stream as uint8, read in chunks (a stream that ends early gives
    fewer), and whether more followed. Never more than nbytes + 1 bytes are inflated."""
    out = np.empty(nbytes, np.uint8)
    view, filled = memoryview(out.data), 0
    while filled < nbytes:
        chunk = f.read(min(_CHUNK, nbytes - filled))
        if not chunk:
            break
        view[filled:filled + len(chunk)] = chunk
        filled += len(chunk)
    more = filled == nbytes and bool(f.read(1))
    return out[:filled], more


def read_header(f: IO[bytes], path: str | Path, key: str) -> Header:
    """The header of an .npy stream, leaving the stream at its data. ValueError for an object
    array (it would need pickle); DataError for a header that is not an .npy header."""
    try:
        version = npy_format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = npy_format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran, dtype = npy_format.read_array_header_2_0(f)
        else:  # 3.0 exists only for structured dtypes with non-Latin-1 field names, which specc never holds
            raise ValueError(f"format version {version[0]}.{version[1]} is not read")
    except ValueError as e:
        raise refused(path, f"'{key}' is not a readable .npy array ({e})", "bad-header",
                      "the file is corrupt or was not written by numpy") from None
    if dtype.hasobject:
        raise ValueError(f"'{key}' holds Python objects")
    return Header(tuple(int(n) for n in shape), dtype, bool(fortran))


def read_array(f: IO[bytes], header: Header, path: str | Path, key: str) -> np.ndarray:
    """The data after a header (which the caller has checked); DataError if the stream holds less
    or more than the header declares."""
    body, more = read_body(f, header.nbytes)
    if len(body) < header.nbytes or more:
        amount = f"only {len(body):,} bytes" if len(body) < header.nbytes else "more data"
        raise refused(path, f"'{key}' declares {header.describe()}, but the file holds {amount}",
                      "bad-size", "the file is corrupt or was written by another program; write it again")
    return body.view(header.dtype).reshape(header.shape, order="F" if header.fortran else "C")


class Archive:
    """An .npz archive open for reading: every member's header is read at once, no member's data
    until asked for. ValueError for an object array (it would need pickle); zipfile, OSError and
    EOFError exceptions for a corrupt archive, as numpy raises them."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._zip = zipfile.ZipFile(self.path)
        try:
            self._names = {self._key(name): name for name in self._zip.namelist()}
            self.headers = {key: self._header(name) for key, name in self._names.items()}
        except BaseException:
            self._zip.close()
            raise

    @staticmethod
    def _key(name: str) -> str:
        return name[:-4] if name.endswith(".npy") else name

    def _header(self, name: str) -> Header:
        with self._zip.open(name) as f:
            return read_header(f, self.path, self._key(name))

    @property
    def files(self) -> list[str]:
        return list(self.headers)

    def array(self, key: str) -> np.ndarray:
        """A member's data, after its header (which the caller has checked)."""
        with self._zip.open(self._names[key]) as f:
            header = read_header(f, self.path, key)
            return read_array(f, header, self.path, key)

    def close(self) -> None:
        self._zip.close()

    def __enter__(self) -> "Archive":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
