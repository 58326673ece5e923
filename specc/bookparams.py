"""The book's parameter files: save_params/load_params, and a restricted import of its .pkl files.

`net.save_params(file)` writes specc's checkpoint format (an .npz: arrays only, written
atomically) under whatever name it is given, so the book's scripts, which call
`save_params("params.pkl")` and later `load_params("params.pkl")`, run unchanged without a
pickle ever being written. The file is a zip archive whatever its suffix.

`net.load_params(file)` reads what it finds: an .npz (specc's, or a plain `np.savez(**params)`)
through specc.checkpoint, anything else as one of the book's pickled parameter files through
`import_book_params`. That import never unpickles arbitrary objects: its Unpickler admits only
the NumPy callables a pickled dict of arrays needs (`_reconstruct`, `ndarray`, `dtype`;
`_frombuffer` for protocol 5, latin-1 `_codecs.encode` for bytes in protocols 0-2) and refuses
every other global with a DataError before anything is called; the result must be a dict of
str -> floating-point ndarray whose names and shapes are the network's.

Dropout. specc's Dropout is inverted (training: x * mask / (1 - r); inference: x); the book's is
not (training: x * mask; inference: x * (1 - r)). The import folds the book's factor into the
parameters so that specc's network computes the book's function, in both modes:

    Let H be the nearest layer before a Dropout(r) whose output scales with its parameters,
    H(x; c*P) = c * H(x; P) for c > 0 (Affine and Convolution: W and b; BatchNorm: gamma and
    beta), with only positively homogeneous layers between them, f(c*x) = c * f(x) for c > 0
    (ReLU, Pooling, Flatten, other Dropouts). Multiplying P by (1 - r) makes the value reaching
    the Dropout (1 - r) times the book's, which is the book's test-time output; what specc's
    identity passes on is then the book's value. In training, specc's x * mask / (1 - r) of
    (1 - r) times the book's value is the book's x * mask.

A Dropout with no such layer before it (first in the chain, or behind Sigmoid, Tanh or a
loss) cannot be folded: the import refuses, naming its line; `fold_dropout=False` imports the
values as they are (specc's inference then differs from the book's by 1 - r there).
"""
from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from specc.check import CheckedLayer
from specc.errors import DataError, Diagnostic, Label
from specc.layers.dropout import Dropout
from specc.text import shape_text
from specc.training import checkpoint

if TYPE_CHECKING:
    from specc.network import Network

_MAX_BYTES = 1 << 30  # a book file is about 1-4 MB; a pickle is read whole, so larger ones are refused


def save_params(net: Network, file: str | Path) -> None:
    """Write the network's parameters (and BatchNorm statistics) as a specc .npz to `file`, atomically."""
    checkpoint.save(Path(file), net, meta={"kind": "params"})


def load_params(net: Network, file: str | Path, *, fold_dropout: bool = True) -> None:
    """Load parameters saved by save_params (any .npz of arrays), or import one of the book's .pkl files."""
    path = Path(file)
    try:
        with open(path, "rb") as f:
            head = f.read(2)
    except OSError as e:
        raise DataError([Diagnostic(f"cannot read the parameter file: {e.strerror or e}", None, "bad-params")],
                        name=str(path)) from None
    if head == b"PK":  # a zip archive: specc's own format
        checkpoint.restore(net, path, net.source)
    else:
        import_book_params(net, path, fold_dropout=fold_dropout)


def import_book_params(net: Network, file: str | Path, *, fold_dropout: bool = True) -> dict[str, np.ndarray]:
    """Import the book's pickled {name: array} file (its `save_params` output) into `net`.

    Safe on untrusted files: only NumPy's array reconstruction is admitted while unpickling
    (anything else is a DataError and nothing is called). Names and shapes must be the
    network's (one diagnostic per mismatch, at the .net line that declares it). With
    fold_dropout (default), each Dropout's test-time factor 1 - ratio of the book's layer is
    folded into the parameters before it (see the module's docstring), so that predict() gives
    the book's scores. Returns the values as loaded into the network (after folding).
    """
    path = Path(file)
    params = _read_book_pickle(path)
    problems = _mismatches(net, params, path.name)
    if problems:
        raise DataError(problems, net.source)
    values = {k: np.array(v, dtype=np.float64) for k, v in params.items()}
    if fold_dropout:
        for name, factor in _dropout_factors(net).items():
            values[name] *= factor
    for k, v in values.items():
        np.copyto(net.params[k], v, casting="same_kind")
    return values


# --- a pickle that can only build arrays ---------------------------------------------------------

def _numpy_globals() -> dict[tuple[str, str], Any]:
    """The only globals a pickled dict of arrays names, under NumPy 1's and NumPy 2's module names:
    `_reconstruct`, `ndarray` and `dtype` (protocols 0-4), `_frombuffer` (protocol 5), and
    `_codecs.encode`, with which protocols 0-2 spell bytes, for latin-1 only."""
    try:  # NumPy 2
        from numpy._core.multiarray import _reconstruct
        from numpy._core.numeric import _frombuffer  # type: ignore[attr-defined]
    except ImportError:  # pragma: no cover - NumPy 1
        from numpy.core.multiarray import _reconstruct  # type: ignore[no-redef]
        from numpy.core.numeric import _frombuffer  # type: ignore[attr-defined,no-redef]
    found: dict[tuple[str, str], Any] = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype,
                                         ("_codecs", "encode"): _latin1}
    for core in ("numpy.core", "numpy._core"):
        found[(f"{core}.multiarray", "_reconstruct")] = _reconstruct
        found[(f"{core}.numeric", "_frombuffer")] = _frombuffer
    return found


def _latin1(text: Any, encoding: Any = "utf-8") -> bytes:
    """codecs.encode as protocols 0-2 use it for bytes; any other codec is refused."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise _Refused(f"_codecs.encode with {encoding!r}")
    return text.encode("latin-1")


class _ArraysOnly(pickle.Unpickler):
    """Unpickler whose find_class knows NumPy's array constructors and nothing else."""

    allowed = _numpy_globals()

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self.allowed[(module, name)]
        except KeyError:
            raise _Refused(f"{module}.{name}") from None

    def persistent_load(self, pid: Any) -> Any:
        raise _Refused("a persistent id")


class _Refused(pickle.UnpicklingError):
    def __init__(self, what: str):
        super().__init__(what)
        self.what = what


def _read_book_pickle(path: Path) -> dict[str, np.ndarray]:
    def error(message: str, hint: str | None) -> DataError:
        return DataError([Diagnostic(message, None, "bad-params", hint=hint)], name=str(path))

    try:
        size = path.stat().st_size
        if size > _MAX_BYTES:
            raise error(f"the parameter file is {size:,} bytes; a pickled parameter file over {_MAX_BYTES:,} "
                        "is not read", "save the parameters as .npz (np.savez) and load that")
        data = path.read_bytes()
    except OSError as e:
        raise error(f"cannot read the parameter file: {e.strerror or e}", None) from None
    try:
        obj = _ArraysOnly(io.BytesIO(data)).load()
    except _Refused as e:
        raise error(f"refused to unpickle: the file asks for {e.what}, and only NumPy arrays are admitted",
                    "the book's parameter files hold a dict of arrays; this file holds something else "
                    "(it may be unsafe to open with pickle)") from None
    except Exception as e:  # a truncated or foreign file: pickle raises anything from EOFError to TypeError
        raise error(f"not a parameter file: neither an .npz archive nor a pickled dict of arrays "
                    f"({type(e).__name__}: {e})",
                    "give a file written by save_params, np.savez, or the book's save_params") from None
    if not isinstance(obj, dict):
        raise error(f"the pickle holds a {type(obj).__name__}, not a dict of parameter arrays",
                    "the book's save_params writes {'W1': array, 'b1': array, ...}")
    for k, v in obj.items():
        if not isinstance(k, str):
            raise error(f"the pickled dict has a key {k!r} ({type(k).__name__}); parameter names are strings",
                        None)
        if type(v) is not np.ndarray or v.dtype.kind != "f":
            what = f"{v.dtype} array" if isinstance(v, np.ndarray) else type(v).__name__
            raise error(f"'{k}' holds a {what}, not an array of floating-point numbers", None)
    return obj


# --- names, shapes and the Dropout fold ----------------------------------------------------------

def _notes(c: CheckedLayer) -> tuple[Label, ...]:
    return tuple(Label(o.call, f"from {o.block}" if o.block else f"copy {o.repeat} of {o.of}")
                 for o in c.spec.origin if o.call)


def _mismatches(net: Network, params: dict[str, np.ndarray], file: str) -> list[Diagnostic]:
    """One diagnostic per parameter that is missing, extra or of another shape (the book's files hold
    parameters only, so BatchNorm's running statistics are not asked for)."""
    out = []
    for c in net.checked.layers:
        for name, shape in c.params.items():
            if name not in params:
                out.append(Diagnostic(f"{file} has no '{name}' ({shape_text(shape)}) for "
                                      f"{c.layer.describe()}", c.spec.span, "params-mismatch",
                                      f"declares {name}", "was the file saved from another network?", _notes(c)))
            elif params[name].shape != tuple(shape):
                out.append(Diagnostic(f"'{name}' is {shape_text(params[name].shape)} in {file}, but "
                                      f"{c.layer.describe()} needs {shape_text(shape)}", c.spec.span,
                                      "params-mismatch", f"declares {name}", None, _notes(c)))
    for name, v in params.items():
        if name not in net.params:
            out.append(Diagnostic(f"{file} has '{name}' ({shape_text(v.shape)}), which this network "
                                  "does not declare", None, "params-mismatch",
                                  hint=f"the network's parameters are {', '.join(net.params)}"))
    return out


def _dropout_factors(net: Network) -> dict[str, float]:
    """Parameter name -> the product of the book's test-time factors (1 - ratio) folded into it."""
    factors: dict[str, float] = {}
    layers = net.checked.layers
    for i, c in enumerate(layers):
        if not isinstance(c.layer, Dropout) or c.layer.args["ratio"] == 0 or c.layer.test_scaled:
            continue  # (a scale="test" Dropout applies the book's factor itself)
        j = i - 1
        while j >= 0 and layers[j].layer.homogeneous:
            j -= 1
        head = layers[j] if j >= 0 else None
        scaled = head.layer.output_scales if head is not None else ()
        if head is None or not scaled:
            blocker = "it is the first layer" if head is None else f"{head.layer.describe()} lies before it"
            raise DataError([Diagnostic(
                f"cannot fold the book's test-time Dropout factor (1 - {c.layer.args['ratio']:g}) into a "
                f"parameter: {blocker}", c.spec.span, "dropout-fold", f"layer {c.index + 1}",
                "the factor folds into the Affine, Convolution or BatchNorm before a Dropout when only ReLU, "
                "Pooling, Flatten or Dropout lie between; fold_dropout=False imports the values unchanged "
                "(specc's Dropout is the identity at inference, the book's scales by 1 - ratio)", _notes(c))],
                net.source)
        for base in scaled:
            name = head.names[base]
            factors[name] = factors.get(name, 1.0) * (1.0 - c.layer.args["ratio"])
    return factors
