"""Image files to predict on: PGM (P5 and P2) and PNG decoded to grayscale pixels, and the look of
an MNIST digit (white on black) that a photographed or drawn digit is checked against."""
from __future__ import annotations

import re
import struct
import zlib
from pathlib import Path

import numpy as np

from specc.errors import DataError, Diagnostic

_WHITESPACE = b" \t\n\r\x0b\x0c"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # colour type -> samples per pixel
_MAX_PIXELS = 1 << 26  # an image declaring more is refused before it is inflated
_LUMA = np.array([0.299, 0.587, 0.114])  # ITU-R 601, as Pillow's "L" mode and most tools convert


def _error(path: Path, message: str, hint: str | None = None) -> DataError:
    return DataError([Diagnostic(message, None, "bad-image", hint=hint)], name=str(path))


# --- PGM ------------------------------------------------------------------------------------------

def read_pgm(path: Path) -> np.ndarray:
    """A binary (P5) or text (P2) graymap: uint8 (H, W) when maxval is 255, floats in [0, 1] otherwise.

    The header is width, height and maxval, separated by whitespace and `#` comments; in P5 exactly
    one whitespace byte follows maxval, so a first pixel of 10 or 32 is a pixel, not a separator.
    """
    data = path.read_bytes()
    if data[:2] not in (b"P5", b"P2"):
        raise _error(path, f"not a PGM image: it starts with {data[:2]!r}, not P5 or P2",
                     "save the image as a binary (P5) or text (P2) PGM, or as PNG")
    pos, fields = 2, []
    for name in ("width", "height", "maxval"):
        value, pos = _pgm_number(data, pos, path, name)
        fields.append(value)
    width, height, maxval = fields
    if not 0 < maxval < 65536 or width == 0 or height == 0 or width * height > _MAX_PIXELS:
        raise _error(path, f"the PGM header declares {width}x{height} pixels with maxval {maxval}",
                     "a PGM image has at least one pixel and a maxval from 1 to 65535")
    count = width * height
    if data[:2] == b"P5":
        if pos >= len(data) or data[pos] not in _WHITESPACE:
            raise _error(path, "the PGM header must end with one whitespace byte after maxval")
        itemsize = 1 if maxval < 256 else 2
        body = data[pos + 1:pos + 1 + count * itemsize]
        if len(body) < count * itemsize:
            raise _error(path, f"the PGM image is truncated: {width}x{height} pixels need {count * itemsize:,} "
                               f"bytes, {len(body):,} follow the header")
        pixels = np.frombuffer(body, np.uint8 if itemsize == 1 else ">u2").astype(np.int64)
    else:
        words = re.sub(rb"#[^\r\n]*", b" ", data[pos:]).split()[:count]
        if len(words) < count or not all(w.isdigit() for w in words):
            raise _error(path, f"the PGM image is truncated or not numbers: {width}x{height} pixels declared")
        pixels = np.array([int(w) for w in words], np.int64)
    if pixels.max() > maxval:
        raise _error(path, f"a pixel is {pixels.max()}, above the maxval {maxval} of the header")
    image = pixels.reshape(height, width)
    return image.astype(np.uint8) if maxval == 255 else image / maxval


def _pgm_number(data: bytes, pos: int, path: Path, name: str) -> tuple[int, int]:
    """The next decimal number of a PGM header after whitespace and comments, and where it ends."""
    while pos < len(data) and (data[pos] in _WHITESPACE or data[pos] == ord("#")):
        if data[pos] == ord("#"):  # a comment runs to the end of its line
            while pos < len(data) and data[pos] not in b"\r\n":
                pos += 1
        else:
            pos += 1
    end = pos
    while end < len(data) and data[end:end + 1].isdigit():
        end += 1
    if end == pos:
        raise _error(path, f"the PGM header has no {name}",
                     "a PGM header is P5 (or P2), width, height and maxval, separated by whitespace")
    return int(data[pos:end]), end


# --- PNG ------------------------------------------------------------------------------------------

def read_png(path: Path) -> np.ndarray:
    """A PNG image as grayscale: uint8 (H, W), or floats in [0, 1] for 16-bit images.

    Pillow decodes it when installed (fast, every kind of PNG); without it, plain 8-bit,
    non-interlaced PNGs are decoded here with zlib. Both give the same pixels: colour becomes
    gray with the ITU-R 601 weights, and transparency is laid over white, as a viewer shows it.
    """
    try:
        from PIL import Image
    except ImportError:
        return _gray(*_decode_png(path))
    try:
        with Image.open(path) as img:
            if img.format != "PNG":
                raise _error(path, f"not a PNG image (it is {img.format})")
            if img.mode.startswith("I"):  # 16-bit grayscale
                return np.asarray(img, np.float64) / (65535 if img.mode.startswith("I;16") else 2**32 - 1)
            return _gray(np.asarray(img.convert("RGBA")), True)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise _error(path, f"cannot read the PNG image ({e})") from None


def _gray(pixels: np.ndarray, alpha: bool) -> np.ndarray:
    """(H, W, C) uint8 samples -> (H, W) uint8 gray; the last channel is alpha when `alpha`."""
    colour = pixels[..., :-1] if alpha else pixels
    value = colour[..., 0].astype(np.float64) if colour.shape[-1] == 1 else colour[..., :3] @ _LUMA
    if alpha:
        a = pixels[..., -1] / 255
        value = value * a + 255 * (1 - a)
    return np.clip(np.round(value), 0, 255).astype(np.uint8)


def _decode_png(path: Path) -> tuple[np.ndarray, bool]:
    """(H, W, C) uint8 samples of a plain PNG (8-bit gray, RGB, with or without alpha; 1-, 2-, 4- or
    8-bit gray or palette; not interlaced), and
    whether the last channel is alpha. The image data is inflated no further than its size."""
    data = path.read_bytes()
    if not data.startswith(_PNG_SIGNATURE):
        raise _error(path, "not a PNG image: its first bytes are not the PNG signature")
    chunks: dict[bytes, bytes] = {}
    idat = []
    pos = len(_PNG_SIGNATURE)
    while pos + 12 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        crc = data[pos + 8 + length:pos + 12 + length]
        if len(body) < length or len(crc) < 4 or zlib.crc32(kind + body) != struct.unpack(">I", crc)[0]:
            raise _error(path, f"the PNG image is corrupt or truncated (in its {kind.decode('latin-1')} chunk)")
        if kind == b"IDAT":
            idat.append(body)
        else:
            chunks.setdefault(kind, body)
        pos += 12 + length
        if kind == b"IEND":
            break
    if b"IHDR" not in chunks or len(chunks[b"IHDR"]) != 13 or not idat:
        raise _error(path, "the PNG image is corrupt or truncated (no header or no image data)")
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunks[b"IHDR"])
    packed = depth in (1, 2, 4) and colour in (0, 3)  # several pixels to a byte
    if not (depth == 8 or packed) or interlace or colour not in _PNG_CHANNELS:
        raise _error(path, f"this PNG ({depth}-bit{', interlaced' if interlace else ''}) needs Pillow to be read",
                     "pip install pillow, or save the image as an 8-bit, non-interlaced PNG or a PGM")
    if width * height > _MAX_PIXELS:
        raise _error(path, f"the PNG image declares {width}x{height} pixels, more than specc reads")
    channels = _PNG_CHANNELS[colour]
    stride = (width * depth + 7) // 8 if packed else width * channels
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(b"".join(idat), height * (stride + 1) + 1)
    except zlib.error as e:
        raise _error(path, f"the PNG image data is corrupt ({e})") from None
    if len(raw) != height * (stride + 1):
        raise _error(path, f"the PNG image data holds {len(raw):,} bytes; {width}x{height} pixels need "
                           f"{height * (stride + 1):,}")
    samples = _unfilter(np.frombuffer(raw, np.uint8).reshape(height, stride + 1), channels, path)
    if packed:  # each row's bits, `depth` at a time, the leftmost pixel in the high bits
        bits = np.unpackbits(samples, axis=1).reshape(height, -1, depth)[:, :width]
        samples = (bits * (1 << np.arange(depth - 1, -1, -1))).sum(axis=2).astype(np.uint8)
        if colour == 0:
            samples = (samples.astype(np.int64) * 255 // ((1 << depth) - 1)).astype(np.uint8)
    samples = samples.reshape(height, width, channels)
    if colour == 3:
        return _palette(samples[..., 0], chunks, path), True
    return samples, colour in (4, 6)


def _unfilter(rows: np.ndarray, bpp: int, path: Path) -> np.ndarray:
    """Undo the PNG filter of each row (the first byte names it: None, Sub, Up, Average, Paeth)."""
    out = np.zeros((rows.shape[0], rows.shape[1] - 1), np.int64)
    previous = np.zeros(rows.shape[1] - 1, np.int64)
    for y, row in enumerate(rows):
        kind, line = row[0], row[1:].astype(np.int64)
        if kind == 0:
            cur = line
        elif kind == 2:
            cur = (line + previous) % 256
        elif kind in (1, 3, 4):
            cur = line.copy()
            for i in range(len(cur)):  # each byte depends on the one bpp to its left
                left = cur[i - bpp] if i >= bpp else 0
                up, corner = previous[i], (previous[i - bpp] if i >= bpp else 0)
                if kind == 1:
                    pred = left
                elif kind == 3:
                    pred = (left + up) // 2
                else:
                    p = left + up - corner
                    pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                    pred = left if pa <= pb and pa <= pc else (up if pb <= pc else corner)
                cur[i] = (cur[i] + pred) % 256
        else:
            raise _error(path, f"the PNG image data is corrupt (row {y} has filter type {kind})")
        out[y] = previous = cur
    return out.astype(np.uint8)


def _palette(index: np.ndarray, chunks: dict[bytes, bytes], path: Path) -> np.ndarray:
    """Palette indices -> RGBA samples, with the alpha of the tRNS chunk (opaque where it has none)."""
    if b"PLTE" not in chunks:
        raise _error(path, "the PNG image has a palette type but no palette")
    rgb = np.frombuffer(chunks[b"PLTE"], np.uint8).reshape(-1, 3)
    alpha = np.full(len(rgb), 255, np.uint8)
    trns = np.frombuffer(chunks.get(b"tRNS", b""), np.uint8)[:len(rgb)]
    alpha[:len(trns)] = trns
    if index.max(initial=0) >= len(rgb):
        raise _error(path, "the PNG image uses a colour its palette lacks")
    return np.concatenate([rgb, alpha[:, None]], axis=1)[index]


# --- the look of an MNIST digit --------------------------------------------------------------

def light_background(x: np.ndarray, scale: float) -> np.ndarray:
    """Which of the images x (N, ...) have a mostly bright border (more than half of its pixels
    above mid-gray). MNIST digits are white on a black background; a digit drawn dark on white
    is predicted confidently and wrongly. Samples that are not 2-D images are never flagged."""
    if x.ndim < 2 or len(x) == 0:
        return np.zeros(len(x), bool)
    shape = x.shape[1:]
    if len(shape) == 1:
        side = int(round(shape[0] ** 0.5))
        if side * side != shape[0] or side < 3:
            return np.zeros(len(x), bool)
        shape = (side, side)
    images = x.reshape(len(x), -1, *shape[-2:])  # (N, channels, H, W)
    border = np.concatenate([images[:, :, 0, :], images[:, :, -1, :], images[:, :, 1:-1, 0], images[:, :, 1:-1, -1]],
                            axis=2).reshape(len(x), -1)
    return (border * scale > 0.5).mean(axis=1) > 0.5


def inverted(x: np.ndarray) -> np.ndarray:
    """Dark-on-light images as light-on-dark: uint8 pixels 255 - x, pixels in [0, 1] 1 - x."""
    return 255 - x if x.dtype == np.uint8 else 1 - x
