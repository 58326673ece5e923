"""The images `specc predict` reads: an .npy or .npz array, an IDX image file, a PGM or a PNG image,
checked as training data is (sizes against the data limit, pixels 0..255 or [0, 1]) and shaped as the
network's samples, with a warning for dark digits on a light background."""
from __future__ import annotations

import math
import zipfile
import zlib
from pathlib import Path

import numpy as np

from specc.errors import DataError, Diagnostic
from specc.text import shape_text
from specc.training import data, images, npyio
from specc.training.idx import data_error, data_limit, read_idx


def read_images(path: str | Path) -> tuple[np.ndarray, float]:
    """Samples to predict on, and their scale: .npy, .npz (array 'x', 'x_test' or the only one),
    an IDX image file, a PGM image (P5 or P2) or a PNG image. Pixels are checked as for training:
    integers 0..255 (returned as uint8, scale 1/255) or finite floats in [0, 1] (scale 1)."""
    path = Path(path)
    if not path.is_file():
        raise data_error(path, "no such file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            x = _read_npy(path)
        elif suffix == ".npz":
            with data.open_npz(path) as z:
                key: str | None = next((k for k in ("x", "x_test", "images") if k in z.files), None)
                if key is None and len(z.files) == 1:
                    key = z.files[0]
                if key is None:
                    raise data_error(path, f"which array? the file has {', '.join(z.files)}; name it 'x'")
                data.npz_within_limit(z, [key])
                x = z.array(key)
        elif suffix == ".pgm":
            x = images.read_pgm(path)[None]
        elif suffix == ".png":
            x = images.read_png(path)[None]
        else:
            x = read_idx(path)
    except DataError:
        raise
    except (ValueError, OSError, zipfile.BadZipFile, EOFError, zlib.error) as e:
        raise data_error(path, f"cannot read images from this file ({e})") from None
    if x.dtype.kind not in "uif":
        raise data_error(path, f"the images must be numbers, not {x.dtype}")
    x = data.pixels(x, path, "the images")
    return x, (1 / 255 if x.dtype == np.uint8 else 1.0)


def _read_npy(path: Path) -> np.ndarray:
    """An .npy array, its header checked against the data limit before its data is read."""
    with open(path, "rb") as f:
        if f.read(2) == b"PK":  # an .npz archive under a .npy name
            raise data_error(path, "this is an .npz archive, not an .npy array", "rename it to .npz")
        f.seek(0)
        header = npyio.read_header(f, path, path.name)
        limit = data_limit()
        if header.nbytes > limit:
            raise data_error(path, f"the header declares {header.describe()}, more than the limit of {limit:,} bytes",
                         "the file is corrupt, or holds more images than specc can hold; "
                         "SPECC_MAX_MEMORY sets the limit")
        return npyio.read_array(f, header, path, path.name)


def predict_inputs(path: str | Path, shape: tuple[int, ...], invert: bool = False
                   ) -> tuple[np.ndarray, float, list[Diagnostic]]:
    """The images of a file ready to predict on (as read_images, `invert`ed if asked), checked
    against the network's input `shape` (DataError naming the file), and warnings about them."""
    path = Path(path)
    x, scale = read_images(path)
    x = _as_samples(x, shape, path)
    if invert:
        x = images.inverted(x)
    warnings = []
    light = images.light_background(x, scale)
    if light.any():
        which = "the image has" if len(x) == 1 else f"{int(light.sum()):,} of {len(x):,} images have"
        hint = ("these images were inverted (--invert); leave it out if they were white on black already" if invert
                else "if the digit is dark on a light background, pass --invert")
        warnings.append(Diagnostic(f"{path}: {which} a mostly light border; MNIST digits are white on black, "
                                   "and a dark digit on white is predicted confidently and wrongly", None,
                                   "light-background", hint=hint, severity="warning"))
    return x, scale, warnings


def _as_samples(x: np.ndarray, shape: tuple[int, ...], path: Path) -> np.ndarray:
    """x with a batch axis, if its samples fit `shape`: (N, ...) samples of the input's size, or
    one sample without its batch axis (a single 28x28 array is one image)."""
    want = math.prod(shape)
    if x.ndim >= 2 and math.prod(x.shape[1:]) == want:
        return x
    if x.size == want:
        return x.reshape(1, *x.shape)
    got = x.shape[1:] if x.ndim >= 2 else x.shape
    which = "the image is" if x.ndim < 2 or len(x) == 1 else f"the {len(x):,} images are"
    expected = f"{shape_text(shape)} ({want:,} values)" if len(shape) > 1 else f"{want:,} values"
    raise data_error(path, f"{which} {shape_text(got)} ({math.prod(got):,} values), but the network's input "
                       f"is {expected}",
                 "give images of the size the network was trained on (28x28 pixels for MNIST)")
