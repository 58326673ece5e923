"""Checkpoints: weights, BatchNorm state, optimizer state and progress in one .npz, written atomically.

Nothing in a checkpoint can run code: arrays only (loaded with allow_pickle=False), and the
progress record is JSON text stored as a string array.
"""
from __future__ import annotations

import json
import os
import tempfile
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from specc.errors import DataError, Diagnostic, Label, RunError
from specc.network import Network
from specc.source import Source

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


def read(path: Path) -> dict[str, np.ndarray]:
    """All arrays of a checkpoint, or DataError saying why it cannot be used."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            if not f.read(2) == b"PK":  # np.load would return a lone .npy bare, or call other bytes a pickle
                raise DataError([Diagnostic("not a checkpoint: the file is not an .npz (zip) archive", None,
                                            "bad-checkpoint", hint="give the weights.npz or best.npz of a run")],
                                name=str(path))
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
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
    arrays = read(path)
    params = {k[len(_PARAM):]: v for k, v in arrays.items() if k.startswith(_PARAM)}
    state = {k[len(_STATE):]: v for k, v in arrays.items() if k.startswith(_STATE)}
    if not params and _META not in arrays:  # a bare np.savez(path, **net.params)
        params = {k: v for k, v in arrays.items() if k not in net.state}
        state = {k: v for k, v in arrays.items() if k in net.state}
    problems = _differences(net, params, state, Path(path).name)
    if problems:
        raise DataError(problems, source, name=str(path) if source is None else None)
    for k, v in params.items():
        np.copyto(net.params[k], v, casting="same_kind")
    for k, v in state.items():
        np.copyto(net.state[k], v, casting="same_kind")
    return arrays


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
            out.append(Diagnostic(f"checkpoint {file} has no '{name}' ({'x'.join(map(str, shape))}) for "
                                  f"{c.layer.describe()}", where, "checkpoint-mismatch",
                                  f"declares {name}", "was the checkpoint saved from another spec?", notes))
        elif have[name] != shape:
            out.append(Diagnostic(f"'{name}' is {'x'.join(map(str, have[name]))} in checkpoint {file}, but "
                                  f"{c.layer.describe()} needs {'x'.join(map(str, shape))}", where,
                                  "checkpoint-mismatch", f"declares {name}", None, notes))
    for name in have:
        if name not in want:
            out.append(Diagnostic(f"checkpoint {file} has '{name}' ({'x'.join(map(str, have[name]))}), "
                                  "which this spec does not declare", None, "checkpoint-mismatch",
                                  hint="was the checkpoint saved from another spec?"))
    for name, arr in {**params, **state}.items():
        if name in want and arr.dtype.kind != "f":
            out.append(Diagnostic(f"'{name}' in checkpoint {file} holds {arr.dtype} values, "
                                  "not floating-point numbers", None,
                                  "checkpoint-mismatch"))
    return out
