"""MNIST-format IDX files (gzip or raw): headers read and checked before any data, bodies read in
chunks no larger than the header declares."""
from __future__ import annotations

import contextlib
import gzip
import math
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterator, Sequence, cast

import numpy as np
from numpy.typing import DTypeLike

from specc import memory
from specc.errors import DataError, Diagnostic
from specc.text import shape_text
from specc.training import npyio

MAX_DATA_BYTES = 4 * 1024**3  # a data file claiming more than this is refused before reading
_IDX_TYPES: dict[int, DTypeLike] = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def data_error(path: str | Path, message: str, hint: str | None = None) -> DataError:
    return DataError([Diagnostic(message, None, "bad-data", hint=hint)], name=str(path))


@dataclass
class _Idx:
    """An IDX file open for reading, its header read and its body not yet."""

    path: Path
    stream: IO[bytes]
    dtype: np.dtype
    dims: tuple[int, ...]

    @property
    def nbytes(self) -> int:
        return math.prod(self.dims) * self.dtype.itemsize

    def describe(self) -> str:
        return f"{shape_text(self.dims)} values ({self.nbytes:,} bytes)"


@contextlib.contextmanager
def _idx_errors(path: Path) -> Iterator[None]:
    """What can go wrong reading an IDX file, as a DataError naming it."""
    try:
        yield
    except FileNotFoundError:
        raise data_error(path, "no such file") from None
    except (OSError, EOFError, zlib.error) as e:
        raise data_error(path, f"the gzip stream is corrupt or truncated ({e})",
                     "download the file again; `gzip -t FILE` tests it") from None


def _open_idx(path: Path, stack: contextlib.ExitStack) -> _Idx:
    """An IDX file (gzip or raw) with its header read and checked; the stream closes with `stack`."""
    with _idx_errors(path):
        with open(path, "rb") as raw:
            gz = raw.read(2) == b"\x1f\x8b"
        f = cast(IO[bytes], stack.enter_context(gzip.open(path, "rb") if gz else open(path, "rb")))
        head = _read_exact(f, 4, path, "the header")
        zero, code, ndim = struct.unpack(">HBB", head)
        if zero != 0 or code not in _IDX_TYPES or not 1 <= ndim <= 4:
            raise data_error(path, f"not an IDX file: its magic number is 0x{head.hex()}",
                         "IDX files start with 0x0000, a type byte (0x08 for uint8) and the number of "
                         "dimensions, e.g. 0x00000803 for images and 0x00000801 for labels")
        dims = struct.unpack(f">{ndim}I", _read_exact(f, 4 * ndim, path, "the dimensions"))
    return _Idx(path, f, np.dtype(_IDX_TYPES[code]), tuple(dims))


def _read_idx_body(idx: _Idx) -> np.ndarray:
    """The data after the header, inflated no further than the header announces (plus one byte)."""
    with _idx_errors(idx.path):
        body, more = npyio.read_body(idx.stream, idx.nbytes)
    if len(body) < idx.nbytes:
        raise data_error(idx.path, f"the file is truncated: the header announces {shape_text(idx.dims)} "
                               f"values ({idx.nbytes:,} bytes of data), but only {len(body):,} bytes follow",
                     "download the file again")
    if more:
        raise data_error(idx.path, f"the file holds more data than its header announces ({shape_text(idx.dims)})")
    return body.view(idx.dtype).reshape(idx.dims).astype(idx.dtype.newbyteorder("="), copy=False)


def _within_limit(files: Sequence[_Idx]) -> None:
    """Refuse files whose headers claim more bytes in all than the data limit, before reading any."""
    limit = data_limit()
    if sum(f.nbytes for f in files) > limit:
        biggest = max(files, key=lambda f: f.nbytes)
        raise data_error(biggest.path, f"the header claims {biggest.describe()}, more than the limit of {limit:,} bytes"
                     + (f" for the {len(files)} files together" if len(files) > 1 else ""),
                     "the file is corrupt, or the data set is larger than specc can hold; "
                     "SPECC_MAX_MEMORY sets the limit")


def data_limit() -> int:
    """The most bytes a data set's arrays may declare: MAX_DATA_BYTES, or the memory budget if smaller."""
    return min(MAX_DATA_BYTES, memory.default_budget())


def read_idx(path: str | Path) -> np.ndarray:
    """An IDX array (gzip or raw), checked against its header before and after reading."""
    path = Path(path)
    with contextlib.ExitStack() as stack:
        idx = _open_idx(path, stack)
        _within_limit([idx])
        return _read_idx_body(idx)


def _read_exact(f, n: int, path: Path, what: str) -> bytes:
    data = f.read(n)
    if len(data) < n:
        raise data_error(path, f"the file is truncated: it ends inside {what} ({len(data)} of {n} bytes)")
    return data
