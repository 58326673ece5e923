"""Checkpoints: weights, BatchNorm state, optimizer state and progress in one .npz, written atomically.

Nothing in a checkpoint can run code: arrays only (loaded with allow_pickle=False), and the
progress record is JSON text stored as a string array.
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
import zipfile
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator

import numpy as np

from specc import memory
from specc.errors import DataError, Diagnostic, Label, RunError
from specc.source import Source
from specc.text import shape_text
from specc.training.npyio import Archive

if TYPE_CHECKING:
    from specc.network import Network

_PARAM, _STATE, _OPT, _META = "param/", "state/", "opt/", "meta"


def save(path: Path, net: Network, optimizer_state: dict[str, np.ndarray] | None = None,
         meta: dict[str, Any] | None = None) -> None:
    """Write atomically: a temporary file in the same folder, flushed to disk, then renamed over `path`."""
    arrays: dict[str, np.ndarray] = {}
    arrays.update({_PARAM + k: v for k, v in net.params.items()})
    arrays.update({_STATE + k: v for k, v in net.state.items()})
    arrays.update({_OPT + k: v for k, v in (optimizer_state or {}).items()})
    arrays[_META] = np.array(json.dumps(meta or {}))
    path = Path(path)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            # numpy's stubs let a **dict's keys be allow_pickle, so they want bool values; ours are arrays
            np.savez(f, **arrays)  # type: ignore[arg-type]
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except OSError as e:  # a full disk, a folder gone read-only: the previous checkpoint is intact
        _remove(tmp)
        raise RunError([Diagnostic(
            f"cannot write the checkpoint: {e.strerror or e}", None, "write-failed",
            hint=f"{'the previous checkpoint is unchanged; ' if path.exists() else ''}"
                 "free some space (or fix the folder's permissions), then resume the run")],
            name=str(path)) from None
    except BaseException:
        _remove(tmp)
        raise


def remove_partial(folder: Path) -> None:
    """Delete the temporary files of checkpoints that a kill cut short before their rename (the
    checkpoints themselves are whole); only while the run folder is locked, so no writer is active."""
    for name in ("weights.npz", "best.npz"):
        for tmp in Path(folder).glob(f".{name}.*.tmp"):
            _remove(str(tmp))


def _remove(tmp: str | None) -> None:
    if tmp is not None and os.path.exists(tmp):
        try:
            os.unlink(tmp)
        except OSError:
            pass


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def read(path: Path, limit: int | None = None) -> dict[str, np.ndarray]:
    """All arrays of a checkpoint, or DataError saying why it cannot be used. Headers are read
    first: arrays declaring more than `limit` bytes in all (default: the memory budget) are
    refused before any data is read."""
    with _opened(Path(path)) as z:
        _check_size(z, z.files, limit)
        return {k: z.array(k) for k in z.files}


@contextlib.contextmanager
def _opened(path: Path) -> Iterator[Archive]:
    """The checkpoint's archive with its headers read; whatever goes wrong inside is a DataError."""
    try:
        with open(path, "rb") as f:
            if not f.read(2) == b"PK":  # np.load would return a lone .npy bare, or call other bytes a pickle
                raise DataError([Diagnostic("not a checkpoint: the file is not an .npz (zip) archive", None,
                                            "bad-checkpoint", hint="give the weights.npz or best.npz of a run")],
                                name=str(path))
        with Archive(path) as z:
            yield z
    except DataError:
        raise
    except FileNotFoundError:
        raise DataError([Diagnostic("no such checkpoint file", None, "bad-checkpoint")], name=str(path)) from None
    except ValueError as e:
        raise DataError([Diagnostic(f"the checkpoint holds objects that would need pickle to load ({e})", None,
                                    "bad-checkpoint", hint="specc checkpoints hold arrays only")],
                        name=str(path)) from None
    except (OSError, zipfile.BadZipFile, EOFError, zlib.error, KeyError) as e:
        raise DataError([Diagnostic(f"the checkpoint is corrupt or truncated ({e})", None, "bad-checkpoint",
                                    hint="use best.npz, or an earlier copy of the run folder")],
                        name=str(path)) from None


def _check_size(z: Archive, keys: Iterable[str], limit: int | None) -> None:
    """Refuse arrays (that no spec shape vouches for) declaring more than `limit` bytes in all."""
    limit = memory.default_budget() if limit is None else limit
    keys = list(keys)
    total = sum(z.headers[k].nbytes for k in keys)
    if total > limit:
        biggest = max(keys, key=lambda k: z.headers[k].nbytes)
        raise DataError([Diagnostic(
            f"the checkpoint declares {total:,} bytes of arrays ('{biggest}' alone is "
            f"{z.headers[biggest].describe()}), more than the limit of {limit:,} bytes", None, "too-large",
            hint="the file is corrupt or not a specc checkpoint; SPECC_MAX_MEMORY sets the limit")],
            name=str(z.path))


def meta(arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    try:
        return json.loads(str(arrays[_META])) if _META in arrays else {}
    except (ValueError, TypeError):
        return {}


def optimizer_state(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k[len(_OPT):]: v for k, v in arrays.items() if k.startswith(_OPT)}


def restore(net: Network, path: Path, source: Source | None = None) -> dict[str, np.ndarray]:
    """Load a checkpoint into `net`, refusing one whose parameters differ from the spec's.

    Plain `{name: array}` .npz files (as np.savez(params) writes) are accepted too.
    """
    with _opened(Path(path)) as z:
        params, state = _members(net, z.files)
        # shapes and dtypes are compared from the headers, before any data is read
        problems = _differences(net, {n: z.headers[k] for n, k in params.items()},
                                {n: z.headers[k] for n, k in state.items()}, Path(path).name)
        if problems:
            raise DataError(problems, source, name=str(path) if source is None else None)
        matched = {*params.values(), *state.values()}
        _check_size(z, [k for k in z.files if k not in matched], None)
        arrays = {k: z.array(k) for k in z.files}
    for n, k in params.items():
        np.copyto(net.params[n], arrays[k], casting="same_kind")
    for n, k in state.items():
        np.copyto(net.state[n], arrays[k], casting="same_kind")
    return arrays


def _members(net: Network, keys: list[str]) -> tuple[dict[str, str], dict[str, str]]:
    """The archive member of each parameter and each state array (name -> key): param/W1 and
    state/..., or the bare names of a plain np.savez(path, **net.params)."""
    params = {k[len(_PARAM):]: k for k in keys if k.startswith(_PARAM)}
    state = {k[len(_STATE):]: k for k in keys if k.startswith(_STATE)}
    if not params and _META not in keys:
        params = {k: k for k in keys if k not in net.state}
        state = {k: k for k in keys if k in net.state}
    return params, state


def _differences(net: Network, params: dict, state: dict, file: str) -> list[Diagnostic]:
    """One diagnostic per mismatch, at the .net line that declares the parameter."""
    declared_by = {}
    for c in net.checked.layers:
        for name in (*c.params, *c.buffers):
            declared_by[name] = c
    want = {**{k: v.shape for k, v in net.params.items()}, **{k: v.shape for k, v in net.state.items()}}
    have = {**{k: v.shape for k, v in params.items()}, **{k: v.shape for k, v in state.items()}}
    out = []
    for name, shape in want.items():
        c = declared_by[name]
        where = c.spec.span
        notes = tuple(Label(o.call, f"from {o.block}" if o.block else f"copy {o.repeat} of {o.of}")
                      for o in c.spec.origin if o.call)
        if name not in have:
            out.append(Diagnostic(f"checkpoint {file} has no '{name}' ({shape_text(shape)}) for "
                                  f"{c.layer.describe()}", where, "checkpoint-mismatch",
                                  f"declares {name}", "was the checkpoint saved from another spec?", notes))
        elif have[name] != shape:
            out.append(Diagnostic(f"'{name}' is {shape_text(have[name])} in checkpoint {file}, but "
                                  f"{c.layer.describe()} needs {shape_text(shape)}", where,
                                  "checkpoint-mismatch", f"declares {name}", None, notes))
    for name in have:
        if name not in want:
            out.append(Diagnostic(f"checkpoint {file} has '{name}' ({shape_text(have[name])}), "
                                  "which this spec does not declare", None, "checkpoint-mismatch",
                                  hint="was the checkpoint saved from another spec?"))
    for name, arr in {**params, **state}.items():
        if name in want and arr.dtype.kind != "f":
            out.append(Diagnostic(f"'{name}' in checkpoint {file} holds {arr.dtype} values, "
                                  "not floating-point numbers", None,
                                  "checkpoint-mismatch"))
    return out
