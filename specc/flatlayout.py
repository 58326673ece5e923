"""Arrays laid end to end in one flat array: a Network's parameters and gradients are views of one
each, so that an optimizer updates them all in one pass and one MPI Allreduce moves them all."""
from __future__ import annotations

import numpy as np


def laid_flat(arrays: dict[str, np.ndarray], dtype: np.dtype, extra: int = 0, into: np.ndarray | None = None,
              copy: bool = True) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """One flat array (new, or `into`), and the same values as views of it, end to end in the dict's
    order, with `extra` zeros after them (into's are left as they are, as its values without copy)."""
    size = sum(a.size for a in arrays.values()) + extra
    if into is None:
        flat = np.zeros(size, dtype)
    elif into.shape != (size,) or into.dtype != dtype:
        raise ValueError(f"a flat array of {size} {dtype} values is needed, not {into.shape} {into.dtype}")
    else:
        flat = into
    out, at = {}, 0
    for name, a in arrays.items():
        out[name] = flat[at:at + a.size].reshape(a.shape)
        if copy:
            out[name][...] = a
        at += a.size
    return flat, out
