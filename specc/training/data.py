"""Data sets: a folder of IDX files (specc.training.idx), an .npz, or a name (specc.training.fetch),
checked and kept as uint8 until a batch needs them, and batches of them (the files `predict`
reads are specc.training.imagefiles'). The embedded sample needs nothing at all."""
from __future__ import annotations

import contextlib
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from specc.errors import DataError, Diagnostic
from specc.suggest import did_you_mean
from specc.training import npyio
from specc.training.fetch import NAMED, NamedSet, cache_dir, fetch, places
from specc.training.idx import _open_idx, _read_idx_body, _within_limit, data_error, data_limit

SAMPLE = "mnist-5k"
SAMPLE_DIR = Path(__file__).resolve().parent.parent / "sample" / SAMPLE  # specc/sample, shipped in the wheel

_STEMS = {("train", "images"): ("train-images-idx3-ubyte", "train-images.idx3-ubyte"),
          ("train", "labels"): ("train-labels-idx1-ubyte", "train-labels.idx1-ubyte"),
          ("test", "images"): ("t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte"),
          ("test", "labels"): ("t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte")}


@dataclass(frozen=True)
class Dataset:
    """Train and test arrays as stored: images uint8 (N, ...) and integer labels (N,)."""

    name: str
    origin: str
    x_train: np.ndarray
    t_train: np.ndarray
    x_test: np.ndarray
    t_test: np.ndarray

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    @property
    def classes(self) -> int:
        return int(max(self.t_train.max(initial=0), self.t_test.max(initial=0))) + 1

    def scale(self) -> float:
        """What a stored value is multiplied by to give the network's input: 1/255 for uint8 pixels."""
        return 1 / 255 if self.x_train.dtype == np.uint8 else 1.0


# --- IDX ---------------------------------------------------------------------------------


def _find(folder: Path, split: str, kind: str) -> Path | None:
    for stem in _STEMS[(split, kind)]:
        for name in (stem + ".gz", stem):
            if (folder / name).is_file():
                return folder / name
    return None


def load_folder(folder: str | Path, name: str | None = None) -> Dataset:
    """The four MNIST-format files of a folder (names as in the original distribution)."""
    folder = Path(folder)
    paths = {}
    for key in _STEMS:
        found = _find(folder, *key)
        if found is None:
            raise data_error(folder, f"no {key[0]} {key[1]} file here: expected {_STEMS[key][0]}.gz (or without .gz)",
                         "a data folder holds train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
                         "t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz")
        paths[key] = found
    with contextlib.ExitStack() as stack:
        # every header first: the counts must agree and the sizes fit before any body is inflated
        files = {key: _open_idx(p, stack) for key, p in paths.items()}
        for split in ("train", "test"):
            images, labels = files[(split, "images")], files[(split, "labels")]
            if images.dims[0] != labels.dims[0]:
                raise data_error(labels.path, f"{images.dims[0]:,} {split} images but {labels.dims[0]:,} labels; "
                                          "the counts must be equal")
        _within_limit(list(files.values()))
        arrays = {key: _read_idx_body(f) for key, f in files.items()}
    return _checked(name or folder.name, str(folder), arrays[("train", "images")], arrays[("train", "labels")],
                    arrays[("test", "images")], arrays[("test", "labels")], paths)


_NPZ_KEYS = ("x_train", "t_train", "x_test", "t_test")


def load_npz(path: str | Path) -> Dataset:
    """x_train, t_train, x_test, t_test from an .npz file; nothing in it can run code."""
    path = Path(path)
    with _npz_errors(path), open_npz(path) as z:
        missing = [k for k in _NPZ_KEYS if k not in z.files]
        if missing:
            has = ", ".join(z.files) or "nothing"
            raise data_error(path, f"the .npz file lacks {', '.join(missing)} (it has {has})",
                         "save it with np.savez(path, x_train=..., t_train=..., x_test=..., t_test=...)")
        for split in ("train", "test"):  # from the headers, before any data is read
            x, t = z.headers[f"x_{split}"], z.headers[f"t_{split}"]
            if x.shape[:1] != t.shape[:1]:
                raise data_error(path, f"{_count(x.shape)} {split} images but {_count(t.shape)} labels; "
                                   "the counts must be equal")
        npz_within_limit(z, _NPZ_KEYS)
        arrays = {k: z.array(k) for k in _NPZ_KEYS}
    t_train, t_test = (_index_labels(arrays[k], path, k) for k in ("t_train", "t_test"))
    return _checked(path.stem, str(path), arrays["x_train"], t_train, arrays["x_test"], t_test, {})


def _count(shape: tuple[int, ...]) -> str:
    return f"{shape[0]:,}" if shape else "no"


def npz_within_limit(z: npyio.Archive, keys: Sequence[str]) -> None:
    limit = data_limit()
    if sum(z.headers[k].nbytes for k in keys) > limit:
        biggest = max(keys, key=lambda k: z.headers[k].nbytes)
        raise data_error(z.path, f"'{biggest}' declares {z.headers[biggest].describe()}, more than the limit of "
                             f"{limit:,} bytes", "the file is corrupt, or the data set is larger than specc can "
                                                 "hold; SPECC_MAX_MEMORY sets the limit")


def _index_labels(t: np.ndarray, path: Path, key: str) -> np.ndarray:
    """Class indices from index or one-hot labels; soft labels (rows of probabilities) are refused,
    since taking their argmax would change what the data says without a word."""
    if t.ndim != 2:
        return t
    one_hot = ((t == 0) | (t == 1)).all(axis=1) & (t.sum(axis=1) == 1)
    if not one_hot.all():
        row = int(np.argmin(one_hot))
        shown = ", ".join(f"{v:g}" for v in t[row, :10]) + (", ..." if t.shape[1] > 10 else "")
        raise data_error(path, f"{key} holds rows that are not one-hot: {np.count_nonzero(~one_hot):,} of {len(t):,}, "
                           f"the first is row {row}: [{shown}]",
                     "one-hot rows hold a single 1 and 0 elsewhere; give class indices (N,) "
                     "or one-hot rows (soft labels are not supported)")
    return t.argmax(axis=1)


@contextlib.contextmanager
def _npz_errors(path: Path) -> Iterator[None]:
    try:
        yield
    except ValueError as e:  # object arrays need pickle, which is refused
        raise data_error(path, f"the .npz file cannot be read without running code ({e})",
                     "store plain numeric arrays") from None
    except (OSError, zipfile.BadZipFile, EOFError, zlib.error) as e:
        raise data_error(path, f"not a readable .npz file ({e})") from None


def open_npz(path: Path) -> npyio.Archive:
    """An .npz archive with its members' headers read; anything else (a lone .npy array, which
    np.load would return bare, or bytes numpy would take for a pickle) is refused by name."""
    with open(path, "rb") as f:
        head = f.read(6)
    if not head.startswith(b"PK"):
        what = "a single .npy array" if head == b"\x93NUMPY" else "not a zip archive"
        raise data_error(path, f"not an .npz file: it is {what}",
                     "save data with np.savez(path, x_train=..., t_train=..., x_test=..., t_test=...)")
    return npyio.Archive(path)


def _checked(name, origin, x_train, t_train, x_test, t_test, paths) -> Dataset:
    def where(split, kind):
        return paths.get((split, kind), origin)

    for split, x, t in (("train", x_train, t_train), ("test", x_test, t_test)):
        if x.dtype.kind not in "uif" or t.dtype.kind not in "uif":
            raise data_error(where(split, "images"), f"the {split} arrays must be numeric, not {x.dtype}/{t.dtype}")
        if t.ndim != 1:
            raise data_error(where(split, "labels"),
                             f"{split} labels must be one per sample, shape (N,), not {t.shape}")
        if len(x) != len(t):
            raise data_error(where(split, "labels"),
                         f"{len(x):,} {split} images but {len(t):,} labels; the counts must be equal")
        if len(x) == 0:
            raise data_error(where(split, "images"), f"the {split} set is empty")
        if t.dtype.kind == "f" and not np.all(t == np.round(t)):
            raise data_error(where(split, "labels"), f"{split} labels must be whole numbers (class indices)")
        if t.min() < 0 or t.max() > 1000:
            bad = t.min() if t.min() < 0 else t.max()
            raise data_error(where(split, "labels"), f"a {split} label is {bad}; labels are class indices 0, 1, 2, ...")
    if x_train.shape[1:] != x_test.shape[1:]:
        raise data_error(origin, f"train samples are {x_train.shape[1:]} but test samples are {x_test.shape[1:]}")
    x_train, x_test = (pixels(x, where(split, "images"), f"the {split} images")
                       for split, x in (("train", x_train), ("test", x_test)))
    return Dataset(name, origin, x_train, t_train.astype(np.intp), x_test, t_test.astype(np.intp))


def pixels(x: np.ndarray, path: str | Path, what: str) -> np.ndarray:
    """Pixels as specc feeds them: integers 0..255 become uint8 (scaled by 1/255 per batch, like
    MNIST's own files); floats must be finite and in [0, 1]. Anything else would train to chance
    or to NaN without saying why, so it is refused with the range seen."""
    if x.dtype == np.uint8 or x.size == 0:
        return x
    if x.dtype.kind in "ui":
        lowest, highest = int(x.min()), int(x.max())
        if lowest < 0 or highest > 255:
            raise data_error(path,
                             f"{what} hold integers from {lowest:,} to {highest:,}; integer pixels must be 0 to 255",
                         "store 0..255 pixels (as uint8 or any integer type), or floats scaled to [0, 1]")
        return x.astype(np.uint8)
    finite = np.isfinite(x)
    if not finite.all():
        nan = int(np.isnan(x).sum())
        counts = [f"{n:,} {kind}" for n, kind in ((nan, "NaN"), (x.size - int(finite.sum()) - nan, "infinite"))
                  if n]
        raise data_error(path, f"{what} hold {' and '.join(counts)} values (of {x.size:,})",
                     "replace or drop those samples; no network can learn from them")
    low, high = float(x.min()), float(x.max())
    if low < 0 or high > 1:
        raise data_error(path, f"{what} hold values from {low:g} to {high:g}; floating-point pixels must lie in [0, 1]",
                     "if they are 0..255 pixels, divide them by 255 (or store them as uint8)")
    return x


# --- finding and fetching ---------------------------------------------------------------


def load(spec: str | Path | None, *, download: Callable[[NamedSet, Path], None] | None = None) -> Dataset:
    """Resolve --data: None or 'mnist-5k' is the embedded sample; a path is loaded; a name is looked up."""
    if spec is None or str(spec) in (SAMPLE, "sample"):
        return load_folder(SAMPLE_DIR, SAMPLE)
    path = Path(spec)
    if path.exists():
        return load_npz(path) if path.is_file() and path.suffix == ".npz" else \
            load_folder(path) if path.is_dir() else _single_file(path)
    named = NAMED.get(str(spec).lower())
    if named is None:
        suggestion = did_you_mean(str(spec), [SAMPLE, *NAMED])
        raise DataError([Diagnostic(
            f"no such file, folder or data set: '{spec}'", None, "unknown-data", "no data set of this name",
            hint=(f"{suggestion} " if suggestion else "")
            + f"give a folder of IDX files, an .npz file, or one of: {', '.join([SAMPLE, *NAMED])}")], name=str(spec))
    for place in places(named.name):
        if _find(place, "train", "images"):
            return load_folder(place, named.name)
    target = cache_dir() / named.name
    (download or fetch)(named, target)
    return load_folder(target, named.name)


def _single_file(path: Path) -> Dataset:
    raise data_error(path, "a single data file is not a data set",
                 "give the folder holding the four IDX files, or an .npz file with x_train, t_train, x_test, t_test")


class Batches:
    """Turns uint8 samples into float batches in one preallocated buffer per batch size."""

    def __init__(self, x: np.ndarray, scale: float, dtype: np.dtype, sample_shape: tuple[int, ...]):
        self.x, self.scale, self.dtype, self.shape = x, scale, np.dtype(dtype), sample_shape
        self._raw: dict[int, np.ndarray] = {}
        self._out: dict[int, np.ndarray] = {}

    def take(self, index: np.ndarray) -> np.ndarray:
        """x[index] scaled to the network's dtype; the returned array is reused by the next call."""
        n = len(index)
        if n not in self._out:
            self._raw[n] = np.empty((n, *self.x.shape[1:]), self.x.dtype)
            self._out[n] = np.empty((n, *self.shape), self.dtype)
        raw, out = self._raw[n], self._out[n]
        np.take(self.x, index, axis=0, out=raw)
        np.multiply(raw.reshape(out.shape), self.dtype.type(self.scale), out=out)
        return out

    def chunks(self, size: int, start: int = 0, stop: int | None = None):
        """Samples start..stop (the whole array by default) in consecutive batches of at most `size`
        (for evaluation), each with the index of its first sample."""
        stop = len(self.x) if stop is None else stop
        for i in range(start, stop, size):
            yield i, self.take(np.arange(i, min(i + size, stop)))


def carved(data: Dataset, train_size: int | None, validation: float | None, seed: int) -> Dataset:
    """The data a run sees: the first `train_size` training samples (all if None) and, with
    `validation`, that fraction of them held out in place of the test set (shuffled by `seed` first,
    as the book's shuffle_dataset does), so that nothing tuned on it has seen a test sample."""
    x, t = data.x_train, data.t_train
    name = data.name
    if train_size is not None:
        if train_size > len(x):
            raise DataError([Diagnostic(f"--train-size {train_size:,} is more than the {len(x):,} training samples "
                                        f"of {data.name}", None, "bad-train-size",
                                        hint=f"give at most {len(x):,}")], name=data.origin)
        x, t = x[:train_size], t[:train_size]
        name = f"{name}[:{train_size:,}]"
    if validation is None:
        return Dataset(name, data.origin, x, t, data.x_test, data.t_test)
    held = int(len(x) * validation)
    if not 0 < held < len(x):
        raise DataError([Diagnostic(f"--validation {validation:g} of {len(x):,} samples leaves "
                                    f"{held:,} for validation and {len(x) - held:,} for training", None,
                                    "bad-validation", hint="both must hold at least one sample")], name=data.origin)
    order = np.random.default_rng([seed, 3]).permutation(len(x))
    x, t = x[order], t[order]
    return Dataset(f"{name} (validation: {held:,} held out)", data.origin, x[held:], t[held:], x[:held], t[:held])
