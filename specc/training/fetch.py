"""Named data sets (mnist, fashion-mnist): where they are looked for, in a documented order, and
their download from the official mirrors with md5 verification."""
from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from specc.errors import DataError, Diagnostic


@dataclass(frozen=True)
class NamedSet:
    """A data set specc can find or fetch by name, with the md5 of each official file."""

    name: str
    files: dict[str, str]  # file name -> md5 of the .gz file
    mirrors: tuple[str, ...]


NAMED = {s.name: s for s in [
    NamedSet("mnist", {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c"},
        ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/")),
    NamedSet("fashion-mnist", {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310"},
        ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",)),
]}


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "specc"


def places(name: str) -> list[Path]:
    """Where a named set is looked for, in order (after an explicit path)."""
    out = []
    if os.environ.get("SPECC_DATA"):
        out.append(Path(os.environ["SPECC_DATA"]) / name)
    out += [cache_dir() / name, Path("/usr/share/datasets") / name]
    return out


def fetch(named: NamedSet, target: Path, mirrors: Sequence[str] | None = None, timeout: float = 20) -> None:
    """Download a named set into `target`, verifying each file's md5; DataError with what to do if it fails."""
    target.mkdir(parents=True, exist_ok=True)
    problems = []
    for file, md5 in named.files.items():
        if (target / file).is_file() and _md5(target / file) == md5:
            continue
        for mirror in mirrors or named.mirrors:
            try:
                _download(mirror + file, target / file, md5, timeout)
                break
            except (OSError, ValueError, http.client.HTTPException) as e:  # e.g. IncompleteRead: a cut transfer
                problems.append(f"{mirror}{file}: {e}")
        else:
            where = "\n".join(f"  {p}" for p in places(named.name))
            raise DataError([Diagnostic(
                f"could not download {named.name} ({problems[-1] if problems else 'no mirror'})", None,
                "no-data",
                hint=f"put the four files ({', '.join(named.files)}) in one of these folders, or pass "
                     f"--data FOLDER:\n{where}")], name=named.name)


def _download(url: str, dest: Path, md5: str, timeout: float) -> None:
    digest = hashlib.md5()
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=dest.name, suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
            while chunk := response.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != md5:
            raise ValueError(f"checksum mismatch: md5 {digest.hexdigest()}, expected {md5}")
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
