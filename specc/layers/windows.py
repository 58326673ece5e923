"""Shape rules of the layers that slide a window over images (Convolution, Pooling, AvgPooling)."""
from __future__ import annotations

import math

from specc.layers.base import Shape, ShapeError
from specc.text import batch_shape


def sliding_output(layer: str, axis: str, length: int, kernel: int, stride: int, pad: int,
                   kernel_arg: str) -> int:
    """Output length of a sliding window: (length + 2*pad - kernel) / stride + 1, a positive whole number."""
    span = length + 2 * pad - kernel
    formula = (f"({axis} + 2*pad - {kernel_arg}) / stride + 1 = "
               f"({length} + 2*{pad} - {kernel}) / {stride} + 1")
    if span < 0:
        raise ShapeError(
            f"{layer} window is larger than its input: {kernel_arg} {kernel} > {axis} + 2*pad = {length + 2 * pad}",
            hint=f"the output {axis} is {formula} = {span / stride + 1:g}; use a smaller {kernel_arg} or more pad",
            arg=kernel_arg)
    if span % stride:
        raise ShapeError(
            f"{layer} output {axis} is not a whole number: {formula} = {span / stride + 1:g}",
            hint=_whole_output_hint(axis, length, kernel, stride, pad, kernel_arg), arg="stride")
    return span // stride + 1


def padding_only(length: int, out: int, window: int, stride: int, pad: int) -> int:
    """How many of the `out` windows along an axis lie wholly in the padding: window r covers
    r*stride - pad .. r*stride - pad + window - 1, before the image while r*stride + window <= pad,
    after it from r*stride >= length + pad on (none unless pad >= window). O(1): pads are user input."""
    before = (pad - window) // stride + 1 if pad >= window else 0
    after = out - -(-(length + pad) // stride)  # out - ceil((length + pad) / stride)
    return min(out, before) + max(0, after)


def _whole_output_hint(axis: str, length: int, kernel: int, stride: int, pad: int, kernel_arg: str) -> str:
    """What makes stride divide length + 2*pad - kernel: only the changes that do, each nearest to
    what was written (one argument changed, the others kept)."""
    span = length + 2 * pad - kernel
    left = span % stride
    # kernel: one larger by the remainder, or one smaller by the rest of the stride
    kernels = [k for k in (kernel - (stride - left), kernel + left) if 1 <= k <= length + 2 * pad]
    # pad: 2*pad moves the span in steps of 2, so an even stride and an odd span never meet
    pads = [p for p in _dividing_pads(length, kernel, stride, max(0, pad - stride), pad + stride)
            if length + 2 * p >= kernel]
    nearest_pad = min(pads, key=lambda p: (abs(p - pad), p)) if pads else None
    # stride: the divisors of the span nearest below and above, above only up to the window
    # (a stride past the window skips input)
    divisors = sorted({d for i in range(1, math.isqrt(span) + 1) if span % i == 0 for d in (i, span // i)}) \
        if span > 0 else []
    below = [d for d in divisors if d < stride][-1:]
    above = [d for d in divisors if stride < d <= max(kernel, stride)][:1]
    options = [" or ".join(f"{kernel_arg}={k}" for k in kernels)] if kernels else []
    if nearest_pad is not None:
        options.append(f"pad={nearest_pad}")
    if below or above:
        options.append(" or ".join(f"stride={d}" for d in below + above))
    why = f"stride {stride} must divide {axis} + 2*pad - {kernel_arg} = {span}"
    if nearest_pad is None:
        why += (f", and no pad can make it: 2*pad is even and {axis} - {kernel_arg} = {length - kernel} is odd"
                if stride % 2 == 0 else ", and no pad can make it")
    return f"{why}; this works with " + ", ".join(options) if options else why


def expect_image(layer: str, in_shape: Shape) -> tuple[int, int, int]:
    if len(in_shape) != 3:
        raise ShapeError(
            f"{layer} expects images (N, channels, height, width), but receives {batch_shape(in_shape)}",
            hint="declare the input as an image, e.g. `input 1x28x28`, and put image layers before any Affine",
            wants="expects (N, C, H, W)")
    c, h, w = in_shape
    return c, h, w


def _dividing_pads(length: int, kernel: int, stride: int, low: int, high: int) -> list[int]:
    """The pads p in low..high with stride dividing length + 2*p - kernel, solved rather than searched
    (a stride may be in the millions): 2*p = kernel - length (mod stride) holds for p in one residue
    class modulo stride / gcd(2, stride), or for none."""
    g = math.gcd(2, stride)
    need = (kernel - length) % stride
    if need % g:
        return []
    period = stride // g
    first = (need // g) * pow(2 // g, -1, period) % period if period > 1 else 0
    start = low + (first - low) % period
    return list(range(start, high + 1, period))
