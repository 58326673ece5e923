"""Data the user gives: pixels that are not uint8, images to predict on (several files, PGM and PNG
read without matplotlib, dark digits on white, wrong sizes), NaN pixels, soft labels and data set
names, each refused or warned of with the file (or the .net line) named."""
from __future__ import annotations

import io
import struct
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from specc import api, cli
from specc.errors import DataError
from specc.training import checkpoint, data, images

SPEC = "input 784\nAffine(10) -> SoftmaxWithLoss\n"


def run_cli(*argv) -> tuple[int, str, str]:
    out = Console(file=io.StringIO(), width=200, color_system=None, highlight=False)
    err = Console(file=io.StringIO(), width=200, color_system=None, highlight=False)
    code = cli.run([str(a) for a in argv], out, err)
    return code, out.file.getvalue(), err.file.getvalue()


def refused(call) -> DataError:
    with pytest.raises(DataError) as info:
        call()
    return info.value


def text_of(e: DataError) -> str:
    return " ".join(d.message + " " + (d.hint or "") for d in e.diagnostics)


@pytest.fixture
def model(tmp_path) -> tuple[Path, Path]:
    """A spec and weights for it (random: these tests look at inputs, not at accuracy)."""
    spec = tmp_path / "m.net"
    spec.write_text(SPEC)
    weights = tmp_path / "w.npz"
    checkpoint.save(weights, api.load(spec, seed=3))
    return spec, weights


def digits(n: int = 3) -> np.ndarray:
    """Real MNIST digits from the embedded sample: white on black, uint8 (n, 28, 28)."""
    return data.load(None).x_test[:n]


def save_set(path: Path, x_train, t_train, x_test=None, t_test=None) -> Path:
    np.savez(path, x_train=x_train, t_train=t_train, x_test=x_train[:5] if x_test is None else x_test,
             t_test=t_train[:5] if t_test is None else t_test)
    return path


# --- point 10: pixels that are not uint8 ----------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint16, np.int16])
def test_integer_pixels_scale_like_uint8(tmp_path, dtype):
    """Regression: int64 pixels 0..255 were fed unscaled and trained to chance."""
    d = data.load(None)
    x, t = d.x_train[:50], d.t_train[:50]
    loaded = data.load(save_set(tmp_path / "d.npz", x.astype(dtype), t))
    assert loaded.scale() == 1 / 255 and loaded.x_train.dtype == np.uint8
    np.testing.assert_array_equal(loaded.x_train, x)


@pytest.mark.parametrize("low, high", [(-1, 200), (0, 256), (0, 1000)])
def test_integer_pixels_outside_0_255_are_refused(tmp_path, low, high):
    x = np.zeros((10, 784), np.int64)
    x[0, 0], x[1, 1] = low, high
    path = save_set(tmp_path / "d.npz", x, np.zeros(10, np.int64))
    e = refused(lambda: data.load(path))
    assert e.name == str(path) and f"integers from {low:,} to {high:,}" in text_of(e) and "0 to 255" in text_of(e)


def test_float_pixels_0_255_are_refused_with_the_fix(tmp_path, model):
    """Regression: float32 pixels 0..255 trained with a loss in the thousands, without a word."""
    x = digits(10).reshape(10, 784).astype(np.float32)
    path = save_set(tmp_path / "d.npz", x, np.zeros(10, np.int64))
    e = refused(lambda: data.load(path))
    assert e.name == str(path) and "values from 0 to 255" in text_of(e) and "[0, 1]" in text_of(e)
    assert "divide them by 255" in e.diagnostics[0].hint
    np.save(tmp_path / "x.npy", x)
    e = refused(lambda: api.prediction(*model, tmp_path / "x.npy"))
    assert "values from 0 to 255" in text_of(e) and e.name == str(tmp_path / "x.npy")
    assert data.load(save_set(tmp_path / "ok.npz", x / 255, np.zeros(10, np.int64))).scale() == 1.0


def test_integer_images_to_predict_scale_like_uint8(tmp_path, model):
    x = digits()
    np.save(tmp_path / "u8.npy", x)
    np.save(tmp_path / "i64.npy", x.astype(np.int64))
    a = api.prediction(*model, tmp_path / "u8.npy").probabilities
    b = api.prediction(*model, tmp_path / "i64.npy").probabilities
    np.testing.assert_array_equal(a, b)


# --- point 12: NaN pixels, soft labels, data set names ------------------------------------------

def test_nan_pixels_are_blamed_on_the_data_file(tmp_path, model):
    x = np.full((10, 784), 0.5, np.float32)
    x[2, :3] = np.nan
    x[4, 7] = np.inf
    path = save_set(tmp_path / "d.npz", x, np.zeros(10, np.int64))
    e = refused(lambda: data.load(path))
    assert e.name == str(path) and "3 NaN and 1 infinite values" in text_of(e)
    code, _, err = run_cli("train", model[0], "--data", path, "--out", tmp_path / "run")
    assert code == 2 and "3 NaN" in err and "learning rate" not in err and "Traceback" not in err


def test_soft_labels_are_refused_not_argmaxed(tmp_path):
    x = digits(10).reshape(10, 784)
    soft = np.eye(10)[np.arange(10)]
    soft[3] = [0.1, 0.9] + [0] * 8
    path = save_set(tmp_path / "d.npz", x, soft, x[:5], np.eye(10)[:5])
    e = refused(lambda: data.load(path))
    assert e.name == str(path) and "t_train holds rows that are not one-hot" in text_of(e)
    assert "row 3: [0.1, 0.9, 0, 0" in text_of(e) and "single 1" in text_of(e)
    one_hot = save_set(tmp_path / "h.npz", x, np.eye(10)[np.arange(10)], x[:5], np.arange(5))
    assert data.load(one_hot).t_train.tolist() == list(range(10))  # one-hot train, index test


def test_unknown_data_name_in_the_spec_is_shown_at_its_line(tmp_path):
    spec = tmp_path / "m.net"
    spec.write_text(SPEC + 'train {\n  epochs = 1\n  data = "fashion"\n}\n')
    e = refused(lambda: api.training(spec, out=tmp_path / "run"))
    d = e.diagnostics[0]
    assert d.span is not None and d.span.line == 5 and e.source is not None and e.name == str(spec)
    assert "'fashion'" in d.message and "did you mean 'fashion-mnist'?" in d.hint
    code, _, err = run_cli("train", spec, "--out", tmp_path / "run2")
    assert code == 2 and f"{spec}:5:" in err and '5 |   data = "fashion"' in err


def test_unknown_data_flag_gets_a_suggestion(tmp_path, model):
    code, _, err = run_cli("eval", model[0], "--weights", model[1], "--data", "fashion")
    assert code == 2 and "did you mean 'fashion-mnist'?" in err
    code, _, err = run_cli("train", model[0], "--data", "mnst", "--out", tmp_path / "run")
    assert code == 2 and "did you mean 'mnist'" in err


# --- point 11: images to predict on ---------------------------------------------------------------

def pgm(image: np.ndarray, comment: bytes = b"", maxval: int = 255) -> bytes:
    h, w = image.shape
    return b"P5\n" + comment + f"{w} {h}\n{maxval}\n".encode() + image.astype(np.uint8).tobytes()


def test_pgm_with_a_comment_and_whitespace_valued_first_pixels(tmp_path):
    """Regression: a `#` comment line, and a first pixel byte of 10 or 32, were refused."""
    image = digits(1)[0].copy()
    for first in (10, 32, 9, 13):
        image[0, 0] = first
        path = tmp_path / "d.pgm"
        path.write_bytes(pgm(image, b"# made by GIMP\n"))
        np.testing.assert_array_equal(images.read_pgm(path), image)


def test_pgm_text_and_other_maxvals(tmp_path):
    path = tmp_path / "a.pgm"
    path.write_bytes(b"P2\n# a comment\n3 2\n15\n0 5 15\n# mid-data comment\n15 0 3\n")
    np.testing.assert_allclose(images.read_pgm(path), np.array([[0, 5, 15], [15, 0, 3]]) / 15)
    path.write_bytes(b"P5 2 1 65535\n" + np.array([0, 65535], ">u2").tobytes())
    np.testing.assert_allclose(images.read_pgm(path), [[0.0, 1.0]])
    for bad, says in ((b"P5\n2 1\n255\n\x00", "truncated"), (b"P5\n2\n", "no height"), (b"P6\n1 1\n255\n\x00", "P5"),
                      (b"P5\n1 1\n255", "one whitespace byte")):
        path.write_bytes(bad)
        assert says in text_of(refused(lambda: images.read_pgm(path)))


def png_files(tmp_path: Path) -> dict[str, Path]:
    """PNGs of every plain kind, written by Pillow (an independent encoder; it picks a filter per row)."""
    Image = pytest.importorskip("PIL.Image")
    rng = np.random.default_rng(0)
    gray = digits(1)[0]
    rgb = rng.integers(0, 256, (28, 28, 3), dtype=np.uint8)
    rgba = np.concatenate([rgb, rng.integers(0, 256, (28, 28, 1), dtype=np.uint8)], axis=2)
    files = {"L": Image.fromarray(gray, "L"), "RGB": Image.fromarray(rgb, "RGB"),
             "RGBA": Image.fromarray(rgba, "RGBA"), "LA": Image.fromarray(rgba[..., [0, 3]], "LA"),
             "P": Image.fromarray(rgb, "RGB").convert("P", palette=Image.Palette.ADAPTIVE, colors=16),
             "P8": Image.fromarray(rgb, "RGB").convert("P", palette=Image.Palette.ADAPTIVE, colors=200),
             "1": Image.fromarray(gray > 128).convert("1")}
    out = {}
    for mode, img in files.items():
        out[mode] = tmp_path / f"{mode}.png"
        img.save(out[mode])
    return out


def test_png_is_read_without_pillow_the_same_as_with_it(tmp_path, monkeypatch):
    files = png_files(tmp_path)
    with_pillow = {mode: images.read_png(p) for mode, p in files.items()}
    np.testing.assert_array_equal(with_pillow["L"], digits(1)[0])
    monkeypatch.setitem(sys.modules, "PIL", None)  # `from PIL import Image` now raises ImportError
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    for mode, p in files.items():
        np.testing.assert_array_equal(images.read_png(p), with_pillow[mode], err_msg=mode)


def test_png_colour_becomes_luma_and_transparency_lies_over_white(tmp_path):
    Image = pytest.importorskip("PIL.Image")
    pixels = np.array([[[255, 0, 0, 255], [0, 0, 0, 0], [0, 0, 0, 128]]], np.uint8)
    Image.fromarray(pixels, "RGBA").save(tmp_path / "a.png")
    # red at full opacity: 0.299 * 255; transparent black: white; half-transparent black: 127
    np.testing.assert_array_equal(images.read_png(tmp_path / "a.png"), [[76, 255, 127]])


def test_several_image_files_at_once(tmp_path, model):
    """Regression: a second image file was refused by the command line."""
    x = digits(3)
    (tmp_path / "b.pgm").write_bytes(pgm(x[1]))
    np.save(tmp_path / "c.npy", x[2:])
    np.save(tmp_path / "a.npy", x[:1])
    files = [tmp_path / "a.npy", tmp_path / "b.pgm", tmp_path / "c.npy"]
    result = api.prediction(*model, files)
    np.save(tmp_path / "all.npy", x)
    whole = api.prediction(*model, tmp_path / "all.npy").probabilities
    np.testing.assert_allclose(result.probabilities, whole, rtol=1e-5, atol=1e-7)  # other batch sizes: rounding
    assert result.files == tuple((str(f), 1) for f in files) and result.warnings == ()
    code, out, err = run_cli("predict", model[0], "--weights", model[1], *files)
    assert code == 0 and err == "" and "3 files: 3 images" in out and "b.pgm" in out


def test_dark_digit_on_white_is_warned_of_and_inverted(tmp_path, model):
    x = digits(2)
    np.save(tmp_path / "white.npy", 255 - x)
    np.save(tmp_path / "black.npy", x)
    (tmp_path / "one.pgm").write_bytes(pgm(255 - x[0]))
    result = api.prediction(*model, [tmp_path / "white.npy", tmp_path / "one.pgm"])
    assert [w.code for w in result.warnings] == ["light-background"] * 2
    assert "2 of 2 images have a mostly light border" in result.warnings[0].message
    assert str(tmp_path / "one.pgm") in result.warnings[1].message and "the image has" in result.warnings[1].message
    assert "--invert" in result.warnings[0].hint
    fixed = api.prediction(*model, tmp_path / "white.npy", invert=True)
    assert fixed.warnings == ()
    np.testing.assert_array_equal(fixed.probabilities, api.prediction(*model, tmp_path / "black.npy").probabilities)
    code, _, err = run_cli("predict", model[0], "--weights", model[1], tmp_path / "one.pgm")
    assert code == 0 and err.startswith(f"warning: {tmp_path / 'one.pgm'}: the image has a mostly light border")
    assert "help: if the digit is dark on a light background, pass --invert" in err
    code, _, err = run_cli("predict", model[0], "--weights", model[1], "--invert", tmp_path / "one.pgm")
    assert code == 0 and err == ""


def test_wrong_size_image_is_named(tmp_path, model):
    """Regression: a 32x32 image was reported at the .net line without naming the image."""
    path = tmp_path / "big.pgm"
    path.write_bytes(pgm(np.zeros((32, 32), np.uint8)))
    e = refused(lambda: api.prediction(*model, [tmp_path / "big.pgm"]))
    assert e.name == str(path) and "the image is 32x32 (1,024 values)" in text_of(e)
    assert "input is 784 values" in text_of(e)
    code, _, err = run_cli("predict", model[0], "--weights", model[1], path)
    assert code == 2 and err.startswith(f"{path}: error: the image is 32x32") and "Traceback" not in err


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def test_png_average_filter_worked_by_hand(tmp_path, monkeypatch):
    """A 3x2 gray PNG whose rows use the Average filter (Pillow's encoder never picks it): each byte
    adds the floor of the mean of its left and upper neighbours, as worked out here by hand."""
    import struct
    import zlib
    rows = bytes([3, 10, 20, 30, 3, 1, 1, 1])  # filter type 3, then three bytes, per row
    png = (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 3, 2, 8, 0, 0, 0, 0))
           + png_chunk(b"IDAT", zlib.compress(rows)) + png_chunk(b"IEND", b""))
    (tmp_path / "a.png").write_bytes(png)
    monkeypatch.setitem(sys.modules, "PIL", None)
    # row 1: 10, 20 + 10//2 = 25, 30 + 25//2 = 42; row 2: 1 + 10//2 = 6, 1 + (6+25)//2 = 16, 1 + (16+42)//2 = 30
    np.testing.assert_array_equal(images.read_png(tmp_path / "a.png"), [[10, 25, 42], [6, 16, 30]])
    (tmp_path / "b.png").write_bytes(png.replace(b"IDAT", b"IDAX", 1))  # the CRC no longer matches
    assert "corrupt" in text_of(refused(lambda: images.read_png(tmp_path / "b.png")))
