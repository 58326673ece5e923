"""Every parameter as one flat array, for an optimizer's update: the flat array that the parameters'
views tile (specc.flatlayout lays them out so), and its cache-sized blocks."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Whole:
    """Every parameter at once: when their values, and their gradients, lie end to end in one
    flat array each (specc.network lays them out so), an update is one pass of NumPy calls over
    the flat arrays instead of one per parameter; the rules are element-wise, so the result is
    the same."""

    name = ""
    value: np.ndarray
    grad: np.ndarray
    lo: int = 0  # where value starts in the flat parameter array (the slots' elements are the same)


# An update runs over blocks of the flat arrays of this many bytes each, so that a block's parameters,
# gradient, state and scratch stay in a core's L2 cache through the rule's passes (SimpleConvNet's
# Adam: 1.15 ms whole, 0.76 ms in blocks; more blocks cost more NumPy calls).
BLOCK_BYTES = 256 * 1024


def blocks(whole: Whole, scratch: np.ndarray) -> list[tuple[Whole, np.ndarray]]:
    """`whole` and its scratch array cut into blocks of BLOCK_BYTES, in order."""
    step = max(1, BLOCK_BYTES // whole.value.itemsize)
    return [(Whole(whole.value[a:a + step], whole.grad[a:a + step], whole.lo + a), scratch[a:a + step])
            for a in range(0, len(whole.value), step)]


def end_to_end(arrays: list[np.ndarray]) -> np.ndarray | None:
    """The flat array that `arrays` tile in order, without gaps, as views of one base; else None."""
    base = arrays[0].base if arrays else None
    if base is None or base.ndim != 1 or not base.flags.c_contiguous:
        return None
    origin, itemsize = base.__array_interface__["data"][0], base.itemsize
    start = at = (arrays[0].__array_interface__["data"][0] - origin) // itemsize
    for a in arrays:
        if (a.base is not base or a.dtype != base.dtype or not a.flags.c_contiguous
                or a.__array_interface__["data"][0] != origin + at * itemsize):
            return None
        at += a.size
    return base[start:at]
